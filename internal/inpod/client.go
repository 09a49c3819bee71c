//go:build linux

package inpod

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/conns"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/readiness"
)

// RetryInterval is how often a pod whose proxies could not start is tried again.
const RetryInterval = 5 * time.Second

// Client talks ZDS with istio-cni and keeps one proxy set per pod. New starts nothing.
type Client struct {
	path string
	m    *manager
	log  *slog.Logger
	// Retry is how often pending pods are started again (RetryInterval); set before Run.
	Retry time.Duration
	// Metrics, when set before Run, counts the pods' proxies (workload_manager_*).
	Metrics *metrics.WorkloadManager
}

// New prepares a client of the ZDS socket at path (INPOD_UDS). ready ("workload proxy
// manager") is cleared once istio-cni's snapshot is in and no pod is pending. reg, when
// set, learns which pods are served (Up) or waiting (Pending).
func New(path string, start Starter, log *slog.Logger, ready *readiness.Task, reg *conns.Registry) *Client {
	if log == nil {
		log = logging.Discard()
	}
	m := newManager(start, log, ready)
	m.conns = reg
	return &Client{path: path, m: m, log: log, Retry: RetryInterval}
}

// Run connects, reconnecting with backoff (10 ms doubling to 15 s), until ctx ends; then
// it stops every pod's proxies and returns.
func (c *Client) Run(ctx context.Context) {
	c.m.stats = c.Metrics
	var wg sync.WaitGroup
	wg.Go(func() { c.retryLoop(ctx) })
	defer wg.Wait()
	defer c.m.stopAll()
	delay := 10 * time.Millisecond
	for {
		err := c.session(ctx)
		if ctx.Err() != nil {
			return
		}
		c.log.Warn("ZDS connection ended, reconnecting", "path", c.path, "retry_in", delay.String(), "error", err)
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		delay = min(2*delay, 15*time.Second)
	}
}

func (c *Client) retryLoop(ctx context.Context) {
	t := time.NewTicker(c.Retry)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.m.retryPending()
		case <-ctx.Done():
			return
		}
	}
}

// session serves one connection: Hello, then every request gets its ACK or NACK. A
// protocol error ends the connection after its NACK.
func (c *Client) session(ctx context.Context) error {
	z, err := dial(c.path)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { z.close() })
	defer stop()
	defer z.close()
	if err := z.hello(); err != nil {
		return err
	}
	c.m.newConnection()
	for {
		msg, err := z.read()
		if msg.req == nil && err != nil { // connection error, or a message beyond reading
			if errors.Is(err, errProtocol) {
				z.ack(err)
			}
			return err
		}
		if err == nil {
			err = c.m.handle(msg)
		}
		if aerr := z.ack(err); aerr != nil {
			return aerr
		}
		if errors.Is(err, errProtocol) {
			return err
		}
	}
}
