//go:build linux

package chart_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// A rolling update of the DaemonSet on node 1, as the chart's updateStrategy has it
// (maxSurge 1, maxUnavailable 0): the new ztunnel pod starts while the old one runs,
// istio-cni hands it the pods (its newest connection), both listen in each pod
// (INPOD_PORT_REUSE), then the old one gets SIGTERM. Traffic both ways through node 1
// all along: sleep → echo-b (node 1's outbound) and curl → echo-a (node 1's inbound),
// as new connections in a loop and as long-lived ones opened through the old ztunnel.
func TestRollingUpdate(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	spec := render(t, "--set", "terminationGracePeriodSeconds=6")
	const deadline = 5 * time.Second // TERMINATION_GRACE_PERIOD_SECONDS 6, less ztunnel's 1 s margin
	grace := time.Duration(spec.TerminationGracePeriodSeconds) * time.Second
	oldPod, newPod := b.pods["zt-a-1"], b.pods["zt-b-1"]
	old := b.startReady(t, spec, 1, oldPod)
	peer := b.startReady(t, spec, 2, b.pods["zt-a-2"])

	routes := []route{{b.pods["sleep"], b.pods["echo-b"].IP + ":8080"}, {b.pods["curl"], b.pods["echo-a"].IP + ":8080"}}
	var longs []*longConn
	for i := range 8 {
		longs = append(longs, openLong(t, routes[i%2]))
	}
	load := startLoad(routes, 4)
	defer load.stop()

	time.Sleep(500 * time.Millisecond)
	newer := b.startReady(t, spec, 1, newPod)
	ztest.Eventually(t, "istio-cni has both ztunnels of node 1 connected", func() bool { return b.cnis[1].Connections() == 2 })
	time.Sleep(time.Second) // both serve
	before := [2]dump{adminDump(t, oldPod), adminDump(t, newPod)}
	for _, d := range before {
		if d.pods() != "default/echo-a foo/sleep" {
			t.Errorf("a ztunnel of node 1 has pods %q before the handover, want both of the node's", d.pods())
		}
	}
	servedBefore := [2]float64{opened(t, oldPod), opened(t, newPod)}

	term := time.Now()
	old.Signal(syscall.SIGTERM)
	exited, err := old.Wait(grace)
	gone := time.Now()
	if !exited || err != nil {
		t.Fatalf("old ztunnel: exited %v (%v) within the %v grace period", exited, err, grace)
	}
	time.Sleep(time.Second) // the new one alone
	counts := load.stop()
	servedAfter := opened(t, newPod)

	t.Logf("handover: old exited %v after SIGTERM; new connections: %d ok, %d failed (%v)",
		gone.Sub(term).Round(10*time.Millisecond), counts.ok, counts.failed(), counts.failures)
	t.Logf("connections node 1's ztunnels opened (inbound and outbound): old %v, new %v before SIGTERM; new %v at the end; old's workloadState listed %d live connections at SIGTERM",
		servedBefore[0], servedBefore[1], servedAfter, before[0].connections())
	if !strings.Contains(old.Output(), "handing the pod's listeners over to the new ztunnel") {
		t.Error("the old ztunnel did not say it handed its listeners over")
	}
	if counts.failed() > 0 {
		t.Errorf("%d of %d new connections failed during the handover: %v", counts.failed(), int(counts.ok)+counts.failed(), counts.failures)
	}
	if servedBefore[0] == 0 || servedBefore[1] == 0 || servedAfter <= servedBefore[1] {
		t.Errorf("connections opened: old %v and new %v while both ran, new %v at the end: want both to serve, then the new one", servedBefore[0], servedBefore[1], servedAfter)
	}
	checkLongLived(t, longs, term, gone, deadline)
	askApp(t, b.pods["sleep"], b.pods["echo-b"].IP+":8080")
	askApp(t, b.pods["curl"], b.pods["echo-a"].IP+":8080")
	if d := adminDump(t, newPod); d.pods() != "default/echo-a foo/sleep" {
		t.Errorf("the new ztunnel has pods %q after the handover", d.pods())
	}
	for _, r := range []*ztest.Running{newer, peer} {
		r.Signal(syscall.SIGTERM)
		if exited, err := r.Wait(grace); !exited || err != nil {
			t.Errorf("exited %v (%v) within the grace period", exited, err)
		}
	}
}

// startReady starts the chart's ztunnel in pod zt of node i and waits for its
// readiness probe; its log is shown if the test fails.
func (b *bed) startReady(t *testing.T, spec podSpec, i int, zt *ztest.BedPod) *ztest.Running {
	t.Helper()
	r := b.startZtunnel(t, spec, i, zt, "2")
	waitReady(t, spec, b.nodes[i], zt, r)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s on node %d:\n%s", zt.Name, i, r.Output())
		}
	})
	return r
}

// checkLongLived wants every long-lived connection through the old ztunnel carried
// until its drain deadline, and closed when it exits (at most a second later).
func checkLongLived(t *testing.T, longs []*longConn, term, gone time.Time, deadline time.Duration) {
	t.Helper()
	for i, l := range longs {
		lastOK, closedAt, err := l.result()
		t.Logf("long-lived %d (%s): last echo %v after SIGTERM, closed %v after (%v)", i, l.route, lastOK.Sub(term).Round(10*time.Millisecond),
			closedAt.Sub(term).Round(10*time.Millisecond), err)
		if lastOK.Sub(term) < deadline-time.Second || closedAt.IsZero() || closedAt.After(gone.Add(time.Second)) {
			t.Errorf("long-lived %d: want it carried until the %v deadline and closed when the old ztunnel exits (%v)", i, deadline, gone.Sub(term))
		}
	}
}

// route is a client pod and the address it connects to.
type route struct {
	from *ztest.BedPod
	addr string
}

func (r route) String() string { return r.from.Name + " → " + r.addr }

// longConn is a connection that echoes a message every 50 ms until it breaks.
type longConn struct {
	route  route
	conn   net.Conn
	mu     sync.Mutex // guards the fields below
	lastOK time.Time
	closed time.Time
	err    error
	done   chan struct{}
}

func openLong(t *testing.T, r route) *longConn {
	t.Helper()
	c, err := r.from.Dial(r.addr)
	if err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	l := &longConn{route: r, conn: c, done: make(chan struct{})}
	br := bufio.NewReader(c)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	go l.run(br)
	t.Cleanup(func() { c.Close(); <-l.done })
	return l
}

func (l *longConn) run(br *bufio.Reader) {
	defer close(l.done)
	msg, got := []byte("ping 0123456789\n"), make([]byte, 16)
	for end := time.Now().Add(2 * time.Minute); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		l.conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err := l.conn.Write(msg)
		if err == nil {
			_, err = io.ReadFull(br, got)
		}
		l.mu.Lock()
		if err != nil {
			l.closed, l.err = time.Now(), err
			l.mu.Unlock()
			return
		}
		l.lastOK = time.Now()
		l.mu.Unlock()
	}
}

func (l *longConn) result() (lastOK, closed time.Time, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastOK, l.closed, l.err
}

// load opens new connections in a loop, each checked end to end: the app's line, 64
// bytes echoed, a clean close. Bounded: 20,000 connections or a minute.
type load struct {
	quit     chan struct{}
	wg       sync.WaitGroup
	ok       atomic.Int64
	mu       sync.Mutex
	failures map[string]int // by kind; guarded by mu
	once     sync.Once
}

type loadCounts struct {
	ok       int64
	failures map[string]int
}

func (c loadCounts) failed() (n int) {
	for _, v := range c.failures {
		n += v
	}
	return n
}

func startLoad(routes []route, perRoute int) *load {
	l := &load{quit: make(chan struct{}), failures: map[string]int{}}
	var total atomic.Int64
	end := time.Now().Add(time.Minute)
	for _, r := range routes {
		for range perRoute {
			l.wg.Go(func() {
				r.from.Do(func() error {
					for total.Add(1) <= 20000 && time.Now().Before(end) {
						select {
						case <-l.quit:
							return nil
						default:
						}
						if err := once(r.addr); err != nil {
							l.mu.Lock()
							l.failures[r.from.Name+": "+kind(err)]++
							l.mu.Unlock()
						} else {
							l.ok.Add(1)
						}
					}
					return nil
				})
			})
		}
	}
	return l
}

func (l *load) stop() loadCounts {
	l.once.Do(func() { close(l.quit) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return loadCounts{ok: l.ok.Load(), failures: l.failures}
}

// once is one connection of the load, from a thread in the client pod.
func once(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if _, err := br.ReadString('\n'); err != nil {
		return fmt.Errorf("reading the app's line: %w", err)
	}
	msg := bytes.Repeat([]byte("x"), 64)
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(br, got); err != nil {
		return fmt.Errorf("reading the echo: %w", err)
	}
	return nil
}

func kind(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset (" + err.Error() + ")"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "closed"
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, syscall.EAGAIN):
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return err.Error()
}

// dump is what the test reads of a ztunnel's /config_dump.
type dump struct {
	WorkloadState map[string]struct {
		Info        struct{ Name, Namespace string }
		Connections struct {
			Inbound, Outbound []json.RawMessage
		}
	} `json:"workloadState"`
}

func (d dump) pods() string {
	var names []string
	for _, w := range d.WorkloadState {
		names = append(names, w.Info.Namespace+"/"+w.Info.Name)
	}
	return joinSorted(names)
}

func (d dump) connections() (n int) {
	for _, w := range d.WorkloadState {
		n += len(w.Connections.Inbound) + len(w.Connections.Outbound)
	}
	return n
}

// adminDump reads /config_dump from inside the ztunnel's pod (admin is on localhost).
func adminDump(t *testing.T, zt *ztest.BedPod) dump {
	t.Helper()
	code, body, err := get(zt, "127.0.0.1", 15000, "/config_dump")
	var d dump
	if err == nil && code == 200 {
		err = json.Unmarshal([]byte(body), &d)
	}
	if err != nil || code != 200 {
		t.Fatalf("%s's /config_dump: %d %v", zt.Name, code, err)
	}
	return d
}

// opened sums istio_tcp_connections_opened_total of a ztunnel, scraped from its node
// as Prometheus would.
func opened(t *testing.T, zt *ztest.BedPod) float64 {
	t.Helper()
	_, body, err := get(zt.Node, zt.IP, 15020, "/metrics")
	if err != nil {
		t.Fatalf("scraping %s: %v", zt.Name, err)
	}
	return sumSeries(body, "istio_tcp_connections_opened_total")
}
