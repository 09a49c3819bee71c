package main

import (
	"errors"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	mdns "github.com/miekg/dns"
)

// dnsLoad asks addr for name (type A) over UDP, as a pod's resolver does: n queries one
// at a time for latency (after a tenth as warm-up), then c concurrent askers for d for
// queries per second. Every answer must carry a record.
func dnsLoad(addr, name string, n, c int, d time.Duration) (map[string]float64, error) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	co := &mdns.Conn{Conn: conn}
	defer co.Close()
	lat := make([]time.Duration, 0, n)
	for i := range n + n/10 {
		start := time.Now()
		if err := ask(co, name); err != nil {
			return nil, err
		}
		if i >= n/10 {
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	us := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	var done, failed atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(d)
	for range c {
		wg.Go(func() {
			conn, err := net.Dial("udp", addr)
			if err != nil {
				failed.Add(1)
				return
			}
			co := &mdns.Conn{Conn: conn}
			defer co.Close()
			for time.Now().Before(deadline) {
				if ask(co, name) != nil {
					failed.Add(1)
					continue
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return map[string]float64{"p50_us": us(0.5), "p99_us": us(0.99), "per_second": float64(done.Load()) / d.Seconds(),
		"failed": float64(failed.Load())}, nil
}

// ask sends one query on co and waits up to 2 s for an answer with a record.
func ask(co *mdns.Conn, name string) error {
	m := new(mdns.Msg)
	m.SetQuestion(name, mdns.TypeA)
	co.SetDeadline(time.Now().Add(2 * time.Second))
	if err := co.WriteMsg(m); err != nil {
		return err
	}
	for {
		r, err := co.ReadMsg()
		if err != nil {
			return err
		}
		if r.Id != m.Id { // a late answer to an earlier query that timed out
			continue
		}
		if len(r.Answer) == 0 {
			return errors.New("an answer without records for " + name)
		}
		return nil
	}
}
