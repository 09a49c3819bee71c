// Command loadgen is the benchmark's client and server apps, run inside pod network
// namespaces (ip netns exec) so that their own CPU is not charged to the proxies.
//
//	loadgen -mode echo -listen :8080                      echo server
//	loadgen -mode rr -addr 10.0.0.2:8080 -n 2000 -size 64  request/response latency on one warm connection
//	loadgen -mode cps -addr 10.0.0.2:8080 -c 8 -d 2s       new connections per second
//	loadgen -mode idle -addr 10.0.0.2:8080 -c 1000 [-size 1024]   hold idle connections until stdin closes;
//	                                                       each stdin line "again" makes every one echo its bytes once more
//	loadgen -mode rate -addr 10.0.0.2:8080 -r 1000 -c 10 -d 5s   64 B request/response at a fixed rate
//	loadgen -mode connrate -addr 10.0.0.2:8080 -r 1000 -d 10s  new connections at a fixed rate: time to first echoed byte
//	loadgen -mode dns -addr 10.0.0.1:53 -name a.example. -n 2000 -c 8 -d 2s   DNS latency, then queries/s
//
// Results are one JSON object on stdout.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	mode := flag.String("mode", "echo", "echo | rr | cps | idle | rate | connrate | dns")
	name := flag.String("name", "", "dns: the name to ask (type A)")
	rate := flag.Int("r", 1000, "rate: requests per second, over -c connections; connrate: connections per second")
	listen := flag.String("listen", ":8080", "echo: address to serve")
	addr := flag.String("addr", "", "rr, cps, idle: server address")
	n := flag.Int("n", 2000, "rr: round trips")
	size := flag.Int("size", 64, "rr: request and response size")
	c := flag.Int("c", 1, "cps: concurrency; idle: connections")
	d := flag.Duration("d", 2*time.Second, "cps: duration")
	flag.Parse()
	var out any
	var err error
	switch *mode {
	case "echo":
		err = echo(*listen)
	case "rr":
		out, err = roundTrips(*addr, *n, *size)
	case "cps":
		out, err = connsPerSecond(*addr, *c, *d)
	case "idle":
		err = idle(*addr, *c, *size)
	case "rate":
		out, err = fixedRate(*addr, *rate, *c, *d)
	case "connrate":
		out, err = connRate(*addr, *rate, *d)
	case "dns":
		out, err = dnsLoad(*addr, *name, *n, *c, *d)
	default:
		log.Fatalf("unknown mode %q", *mode)
	}
	if err != nil {
		log.Fatal(err)
	}
	if out != nil {
		json.NewEncoder(os.Stdout).Encode(out)
	}
}

func echo(listen string) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	os.Stdout.WriteString("ready\n")
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			// Through a buffer, not splice(2): splice holds a pipe (two more descriptors)
			// per connection for its whole life, and the load tests hold 10,000.
			io.Copy(struct{ io.Writer }{c}, struct{ io.Reader }{c})
		}()
	}
}

// roundTrips measures request/response latency on one connection after a warm-up.
func roundTrips(addr string, n, size int) (map[string]float64, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf := make([]byte, size)
	lat := make([]time.Duration, 0, n)
	for i := range n + n/10 {
		start := time.Now()
		if _, err := c.Write(buf); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return nil, err
		}
		if i >= n/10 { // the first tenth warms the path up
			lat = append(lat, time.Since(start))
		}
	}
	p50, p99 := percentiles(lat)
	return map[string]float64{"p50_us": p50, "p99_us": p99}, nil
}

// percentiles sorts lat and returns its median and 99th percentile in µs.
func percentiles(lat []time.Duration) (p50, p99 float64) {
	slices.Sort(lat)
	us := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Nanoseconds()) / 1e3 }
	return us(0.5), us(0.99)
}

// connsPerSecond opens, uses (one byte each way) and closes connections from c workers.
func connsPerSecond(addr string, c int, d time.Duration) (map[string]float64, error) {
	var done, failed atomic.Int64
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			b := []byte{1}
			for time.Now().Before(deadline) {
				conn, err := net.Dial("tcp", addr)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, err = conn.Write(b)
				if err == nil {
					_, err = io.ReadFull(conn, b)
				}
				conn.Close()
				if err != nil {
					failed.Add(1)
					continue
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return map[string]float64{"per_second": float64(done.Load()) / d.Seconds(), "failed": float64(failed.Load())}, nil
}

// idle opens c connections, checks each carries a byte, says "ready", and holds them
// until stdin closes.
func idle(addr string, c, size int) error {
	conns := make([]net.Conn, 0, c)
	defer func() {
		for _, x := range conns {
			x.Close()
		}
	}()
	for range c {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return fmt.Errorf("connection %d: %w", len(conns), err)
		}
		conns = append(conns, conn)
		if err := echoOnce(conn, len(conns)-1, size); err != nil {
			return fmt.Errorf("connection %d: %w", len(conns)-1, err)
		}
	}
	os.Stdout.WriteString("ready\n")
	in := bufio.NewReader(os.Stdin)
	for {
		line, err := in.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != "again" {
			return nil
		}
		for i, conn := range conns {
			if err := echoOnce(conn, i, size); err != nil {
				return fmt.Errorf("connection %d, again: %w", i, err)
			}
		}
		os.Stdout.WriteString("ready\n")
	}
}

// echoOnce sends size bytes that name connection i and expects them back.
func echoOnce(conn net.Conn, i, size int) error {
	msg := make([]byte, size)
	for k := range msg {
		msg[k] = byte(i >> (8 * (k % 3)))
	}
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	got := make([]byte, size)
	if _, err := io.ReadFull(conn, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return errors.New("the echo carried other bytes")
	}
	return nil
}

// fixedRate sends 64 B requests at rate per second, spread over c kept-alive
// connections, for d, and reports how many were answered.
func fixedRate(addr string, rate, c int, d time.Duration) (map[string]float64, error) {
	var done, failed atomic.Int64
	interval := time.Duration(c) * time.Second / time.Duration(rate)
	var wg sync.WaitGroup
	for range c {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, err
		}
		wg.Go(func() {
			defer conn.Close()
			buf := make([]byte, 64)
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for end := time.Now().Add(d); time.Now().Before(end); <-tick.C {
				if _, err := conn.Write(buf); err != nil {
					failed.Add(1)
					return
				}
				if _, err := io.ReadFull(conn, buf); err != nil {
					failed.Add(1)
					return
				}
				done.Add(1)
			}
		})
	}
	wg.Wait()
	return map[string]float64{"per_second": float64(done.Load()) / d.Seconds(), "failed": float64(failed.Load())}, nil
}

// connRate opens rate new connections per second for d, on an open-loop schedule (a
// slow answer does not delay the next connection), each carrying one byte each way;
// it reports the time from dial to the echoed byte, what a client waits before its
// first response. Each connection is bounded by 5 s; the count by rate × d.
func connRate(addr string, rate int, d time.Duration) (map[string]float64, error) {
	total := int(d.Seconds() * float64(rate))
	lat := make([]time.Duration, total)
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for i := range total {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		wg.Go(func() {
			t0 := time.Now()
			conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				failed.Add(1)
				return
			}
			defer conn.Close()
			conn.SetDeadline(t0.Add(5 * time.Second))
			b := []byte{1}
			if _, err := conn.Write(b); err != nil {
				failed.Add(1)
				return
			}
			if _, err := io.ReadFull(conn, b); err != nil {
				failed.Add(1)
				return
			}
			lat[i] = time.Since(t0)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	lat = slices.DeleteFunc(lat, func(x time.Duration) bool { return x == 0 })
	if len(lat) == 0 {
		return nil, fmt.Errorf("no connection of %d got its byte back", total)
	}
	p50, p99 := percentiles(lat)
	return map[string]float64{"per_second": float64(len(lat)) / elapsed.Seconds(), "failed": float64(failed.Load()),
		"p50_us": p50, "p99_us": p99}, nil
}
