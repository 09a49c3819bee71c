package xds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	statuspb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

var (
	errNoConnection = errors.New("cannot reach istiod")
	errSilent       = errors.New("istiod accepted the stream but sent nothing")
	errRootsChanged = errors.New("istiod's trusted roots changed")
)

type stream = discoverypb.AggregatedDiscoveryService_DeltaAggregatedResourcesClient

// session runs one stream until it fails or ctx ends. got reports whether any response
// arrived (the connection was healthy for a while).
func (c *Client) session(ctx context.Context) (got bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := discoverypb.NewAggregatedDiscoveryServiceClient(c.conn).DeltaAggregatedResources(sctx)
	if err != nil {
		return false, fmt.Errorf("%w: %v", errNoConnection, err)
	}
	for i := range resourceTypes {
		if err := st.Send(c.subscribeRequest(i)); err != nil {
			return false, fmt.Errorf("%w: %v", errNoConnection, err)
		}
	}
	responses := make(chan *discoverypb.DeltaDiscoveryResponse)
	recvErr := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // ends Recv before waiting for the receiver
	wg.Go(func() { recvErr <- receive(sctx, st, responses) })

	silence := time.NewTimer(c.cfg.FirstResponseTimeout)
	defer silence.Stop()
	roots := time.NewTicker(c.cfg.RootsInterval)
	defer roots.Stop()
	for {
		select {
		case <-roots.C:
			if err := c.checkRoots(); err != nil {
				return got, err
			}
		case resp := <-responses:
			got = true
			silence.Stop()
			if err := st.Send(c.handle(resp)); err != nil {
				return got, err
			}
		case name := <-c.demands:
			req := &discoverypb.DeltaDiscoveryRequest{TypeUrl: AddressType, ResourceNamesSubscribe: []string{name}}
			if err := st.Send(req); err != nil {
				return got, err
			}
		case err := <-recvErr:
			return got, err
		case <-silence.C:
			return got, errSilent
		case <-sctx.Done():
			return got, sctx.Err()
		}
	}
}

func receive(ctx context.Context, st stream, out chan<- *discoverypb.DeltaDiscoveryResponse) error {
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		select {
		case out <- resp:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// handle applies one response and returns its ACK, or its NACK naming every resource
// that was refused (the others are applied all the same).
func (c *Client) handle(resp *discoverypb.DeltaDiscoveryResponse) *discoverypb.DeltaDiscoveryRequest {
	c.cfg.Metrics.Received(resp.TypeUrl, proto.Size(resp))
	i := typeIndex(resp.TypeUrl)
	ack := &discoverypb.DeltaDiscoveryRequest{TypeUrl: resp.TypeUrl, ResponseNonce: resp.Nonce}
	if i < 0 {
		ack.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: "unknown type " + resp.TypeUrl}
		return ack
	}
	u, bad := decode(i, resp)
	for _, e := range c.store.Apply(u) {
		bad = append(bad, rejection{e.Name, e.Err.Error()})
	}
	c.record(i, resp, bad)
	if len(bad) > 0 {
		msgs := make([]string, len(bad))
		for j, b := range bad {
			msgs[j] = b.String()
		}
		msg := strings.Join(msgs, "; ")
		c.log.Warn("xDS resources rejected (NACK)", "type", resp.TypeUrl, "errors", msg)
		ack.ErrorDetail = &statuspb.Status{Code: int32(codes.InvalidArgument), Message: msg}
	}
	return ack
}

// record remembers resource versions (for reconnects), wakes on-demand waiters and
// clears readiness once every type has been synced.
func (c *Client) record(i int, resp *discoverypb.DeltaDiscoveryResponse, bad []rejection) {
	refused := make(map[string]bool, len(bad))
	for _, b := range bad {
		refused[b.name] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range resp.Resources {
		if !refused[r.Name] {
			c.known[i][r.Name] = r.Version
		}
		c.answeredLocked(r.Name)
		for _, alias := range r.Aliases { // on-demand answers name the key asked as an alias
			c.answeredLocked(alias)
		}
	}
	for _, name := range resp.RemovedResources {
		delete(c.known[i], name)
		c.answeredLocked(name)
	}
	wasSynced := c.syncedLocked()
	c.typeSynced[i] = true
	if !wasSynced && c.syncedLocked() {
		if c.ready != nil {
			c.ready.Done()
		}
		close(c.synced)
	}
}

// syncedLocked reports whether every type has had its first response.
func (c *Client) syncedLocked() bool {
	for _, ok := range c.typeSynced {
		if !ok {
			return false
		}
	}
	return true
}

// checkRoots ends the session when the roots changed since the connection was dialed;
// a roots file that no longer parses is logged once per change and the roots in force
// stay.
func (c *Client) checkRoots() error {
	if c.cfg.Roots == nil {
		return nil
	}
	_, gen, err := c.cfg.Roots.Current()
	if err != nil && err.Error() != c.rootsErr {
		c.log.Warn("XDS_ROOT_CA not re-read", "error", err)
	}
	c.rootsErr = ""
	if err != nil {
		c.rootsErr = err.Error()
	}
	if gen != c.gen {
		return errRootsChanged
	}
	return nil
}
