package certmgr_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/caclient"
	"github.com/ztunnel-go/ztunnel/internal/certmgr"
	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/istiod"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func states(m *certmgr.Manager) map[string]string {
	out := map[string]string{}
	for _, s := range m.Dump() {
		out[s.ID.String()] = s.State
	}
	return out
}

func TestWatchStatePrefetchesAndForgets(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		store := state.NewStore()
		sleepA := ztest.Workload("foo", "sleep", "10.0.0.1") // node-a, HBONE, sa sleep
		sleepB := ztest.Workload("foo", "sleep-2", "10.0.0.2")
		sleepB.ServiceAccount = "sleep"
		other := ztest.Workload("default", "remote", "10.0.1.1")
		other.Node = "node-b"
		plain := ztest.Workload("default", "tcp-only", "10.0.0.3")
		plain.TunnelProtocol = workloadapi.TunnelProtocol_NONE
		store.Apply(state.Update{Addresses: []*workloadapi.Address{ztest.AsAddress(sleepA), ztest.AsAddress(sleepB),
			ztest.AsAddress(other), ztest.AsAddress(plain)}})

		f := newFake(t)
		m := started(t, f, certmgr.Options{})
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { m.WatchState(ctx, store, "node-a") })
		defer wg.Wait()
		defer cancel()

		synctest.Wait()
		want := map[string]string{"spiffe://cluster.local/ns/foo/sa/sleep": "Available"}
		if got := states(m); len(got) != 1 || got["spiffe://cluster.local/ns/foo/sa/sleep"] != "Available" {
			t.Fatalf("prefetched %v, want %v", got, want)
		}
		store.Apply(state.Update{RemovedAddresses: []string{sleepA.Uid}}) // one of two pods leaves
		synctest.Wait()
		if len(m.Dump()) != 1 {
			t.Error("identity forgotten while a workload still uses it")
		}
		store.Apply(state.Update{RemovedAddresses: []string{sleepB.Uid}}) // the last one leaves
		synctest.Wait()
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if len(m.Dump()) != 0 || f.count(identity.New("cluster.local", "foo", "sleep")) != 1 {
			t.Errorf("after the last workload left: cached %v, fetched %d times", m.Dump(), f.count(sleepID))
		}
	})
}

// TestConcurrentGetsMakeOneCSR is the same guarantee over real gRPC and TLS.
func TestConcurrentGetsMakeOneCSR(t *testing.T) {
	ztest.NoLeaks(t)
	fca := ztest.NewFakeCA(t)
	fca.Delay(100 * time.Millisecond) // all Gets arrive while the first CSR is in flight
	c, err := caclient.New(caclient.Config{Address: fca.Address, Roots: istiod.NewRoots("", config.RootCert{PEM: fca.ServePEM}.Load),
		Token: config.Token{Literal: "t"}.Read, TTL: time.Hour, Impersonate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := started(t, c, certmgr.Options{})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := m.Get(ctx, httpbin); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := len(fca.Requests()); n != 1 {
		t.Errorf("%d CSRs for 20 concurrent Gets, want 1", n)
	}
}

// TestBadRenewalsOverGRPC: whatever goes wrong with a renewal (the CA down, an answer
// for another identity, garbage), the still-valid certificate is kept and served, the
// state stays Available, the log says why, and the next retry after the CA is fixed
// brings a new certificate.
func TestBadRenewalsOverGRPC(t *testing.T) {
	ztest.NoLeaks(t)
	tests := []struct {
		name        string
		break_, fix func(*testing.T, *ztest.FakeCA)
		logs        string
	}{
		{"CA down", func(_ *testing.T, f *ztest.FakeCA) { f.Stop() }, func(t *testing.T, f *ztest.FakeCA) { f.Start(t) }, "Unavailable"},
		{"wrong identity", func(_ *testing.T, f *ztest.FakeCA) { f.AnswerAs(sleepID) },
			func(_ *testing.T, f *ztest.FakeCA) { f.AnswerAs(identity.Identity{}) }, "certificate identity differs"},
		{"garbage", func(_ *testing.T, f *ztest.FakeCA) { f.Garbage(true) }, func(_ *testing.T, f *ztest.FakeCA) { f.Garbage(false) }, "not PEM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fca := ztest.NewFakeCA(t)
			c, err := caclient.New(caclient.Config{Address: fca.Address, Roots: istiod.NewRoots("", config.RootCert{PEM: fca.ServePEM}.Load),
				Token: config.Token{Literal: "t"}.Read, TTL: 4 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var logs ztest.LogBuffer
			log, _, _ := logging.New(&logs, "plain", "info")
			m := started(t, c, certmgr.Options{Logger: log, FetchTimeout: time.Second})
			c1 := mustGet(t, m, httpbin)
			tt.break_(t, fca)
			if !logs.WaitFor("retaining existing valid certificate") {
				t.Fatal("no failed renewal logged")
			}
			if got := mustGet(t, m, httpbin); got != c1 || states(m)[httpbin.String()] != "Available" {
				t.Error("the valid certificate was not kept")
			}
			if !strings.Contains(logs.String(), tt.logs) {
				t.Errorf("log does not say why: %s", logs.String())
			}
			tt.fix(t, fca)
			ztest.Eventually(t, "a renewed certificate", func() bool {
				got, err := m.Get(context.Background(), httpbin)
				return err == nil && got.Leaf.SerialNumber.Cmp(c1.Leaf.SerialNumber) != 0
			})
		})
	}
}
