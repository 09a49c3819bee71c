package certmgr_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/certmgr"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	httpbin = identity.New("cluster.local", "default", "httpbin")
	sleepID = identity.New("cluster.local", "foo", "sleep")
)

// fakeFetcher issues 1-hour certificates from a real CA on the (bubble's) clock, and can
// fail or hold callers at a gate.
type fakeFetcher struct {
	ca *ca.CA

	mu        sync.Mutex
	calls     map[identity.Identity]int
	order     []identity.Identity
	fail      error
	gate      chan struct{} // when set, Fetch waits for it to close
	active    int
	maxActive int
}

func newFake(t *testing.T) *fakeFetcher {
	c, err := ca.New("cluster.local", time.Hour, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeFetcher{ca: c, calls: map[identity.Identity]int{}}
}

func (f *fakeFetcher) Fetch(ctx context.Context, id identity.Identity) (*identity.Cert, error) {
	f.mu.Lock()
	f.calls[id]++
	f.order = append(f.order, id)
	f.active++
	f.maxActive = max(f.maxActive, f.active)
	gate, fail := f.gate, f.fail
	f.mu.Unlock()
	defer func() { f.mu.Lock(); f.active--; f.mu.Unlock() }()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		return nil, fail
	}
	return f.ca.Fetch(ctx, id)
}

func (f *fakeFetcher) count(id identity.Identity) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[id]
}
func (f *fakeFetcher) setFail(err error) { f.mu.Lock(); f.fail = err; f.mu.Unlock() }

// run starts m and returns its stop function, which waits for Run to return.
func run(m *certmgr.Manager) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// started returns a running manager over f, stopped when the test ends.
func started(t *testing.T, f certmgr.Fetcher, opts certmgr.Options) *certmgr.Manager {
	m := certmgr.New(f, opts)
	t.Cleanup(run(m))
	return m
}

func mustGet(t *testing.T, m *certmgr.Manager, id identity.Identity) *identity.Cert {
	t.Helper()
	c, err := m.Get(context.Background(), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return c
}

func TestRenewsAtHalfLife(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		m := started(t, f, certmgr.Options{})
		c1 := mustGet(t, m, httpbin)
		// Valid from t0-1m to t0+60m: half life at t0+29.5m, jitter up to 3.05m earlier.
		time.Sleep(26 * time.Minute)
		synctest.Wait()
		if n := f.count(httpbin); n != 1 {
			t.Fatalf("%d fetches before half life, want 1", n)
		}
		time.Sleep(4 * time.Minute)
		synctest.Wait()
		if n := f.count(httpbin); n != 2 {
			t.Fatalf("%d fetches after half life, want 2", n)
		}
		if c2 := mustGet(t, m, httpbin); c2.Leaf.SerialNumber.Cmp(c1.Leaf.SerialNumber) == 0 {
			t.Error("Get still returns the old certificate after renewal")
		}
	})
}

func TestOutageKeepsValidCertificateAndRecovers(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		m := started(t, f, certmgr.Options{})
		c1 := mustGet(t, m, httpbin)
		f.setFail(errors.New("CA unreachable"))
		time.Sleep(45 * time.Minute) // past half life, many failed renewals
		synctest.Wait()
		if n := f.count(httpbin); n < 5 {
			t.Errorf("only %d attempts during the outage; renewals should retry with backoff", n)
		}
		if got := mustGet(t, m, httpbin); got != c1 {
			t.Error("a still-valid certificate was not served during the outage")
		}
		if st := m.Dump(); len(st) != 1 || st[0].State != "Available" {
			t.Errorf("state during outage = %+v, want Available", st)
		}
		f.setFail(nil)
		time.Sleep(3 * time.Minute) // the 150 s backoff cap, plus jitter
		synctest.Wait()
		if got := mustGet(t, m, httpbin); got == c1 {
			t.Error("no new certificate after the CA came back")
		}
	})
}

func TestExpiredCertificateIsNeverServed(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		m := started(t, f, certmgr.Options{})
		mustGet(t, m, httpbin)
		f.setFail(errors.New("CA unreachable"))
		time.Sleep(61 * time.Minute)
		synctest.Wait()
		c, err := m.Get(context.Background(), httpbin)
		if err == nil || c != nil || !strings.Contains(err.Error(), "CA unreachable") {
			t.Errorf("Get after expiry = %v, %v; want the CA's error", c, err)
		}
		if st := m.Dump(); st[0].State != "Unavailable: CA unreachable" {
			t.Errorf("state = %q", st[0].State)
		}
	})
}

func TestFirstFetchFailureFailsFast(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		f.setFail(errors.New("permission denied"))
		m := started(t, f, certmgr.Options{})
		if _, err := m.Get(context.Background(), httpbin); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("Get = %v, want the CA's error without waiting for retries", err)
		}
	})
}

func TestConcurrentGetsShareOneFetch(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		f.gate = make(chan struct{})
		m := started(t, f, certmgr.Options{})
		var wg sync.WaitGroup
		certs := make([]*identity.Cert, 10)
		for i := range certs {
			wg.Go(func() { certs[i] = mustGet(t, m, httpbin) })
		}
		synctest.Wait()
		close(f.gate)
		wg.Wait()
		if n := f.count(httpbin); n != 1 {
			t.Errorf("%d fetches for 10 concurrent Gets, want 1", n)
		}
		for _, c := range certs[1:] {
			if c != certs[0] {
				t.Error("concurrent Gets got different certificates")
			}
		}
	})
}

func TestConcurrentFetchesAreBounded(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		f.gate = make(chan struct{})
		m := started(t, f, certmgr.Options{MaxConcurrent: 2})
		for i := range 5 {
			m.Prefetch(identity.New("cluster.local", "ns", string(rune('a'+i))))
		}
		synctest.Wait()
		close(f.gate)
		synctest.Wait()
		if f.maxActive != 2 || len(f.order) != 5 {
			t.Errorf("max %d at once, %d fetched; want 2 and 5", f.maxActive, len(f.order))
		}
	})
}

func TestForgetStopsRenewals(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		f := newFake(t)
		m := started(t, f, certmgr.Options{})
		mustGet(t, m, httpbin)
		m.Forget(httpbin)
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if n := f.count(httpbin); n != 1 || len(m.Dump()) != 0 {
			t.Errorf("%d fetches and %d cached after Forget", n, len(m.Dump()))
		}
	})
}

func TestGetAfterStop(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		m := certmgr.New(newFake(t), certmgr.Options{})
		run(m)()
		if _, err := m.Get(context.Background(), httpbin); !errors.Is(err, certmgr.ErrClosed) {
			t.Errorf("Get after Run returned = %v, want ErrClosed", err)
		}
	})
}
