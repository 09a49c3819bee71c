package certmgr

import (
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestQueueOrder(t *testing.T) {
	ztest.NoLeaks(t)
	m := New(nil, Options{})
	ids := map[string]identity.Identity{}
	enqueue := func(name string, p Priority) {
		id := identity.New("td", "ns", name)
		ids[name] = id
		m.mu.Lock()
		m.enqueueLocked(m.entryLocked(id), p)
		m.mu.Unlock()
	}
	enqueue("refresh-1", Background)
	enqueue("warm-1", Warmup)
	enqueue("conn-1", RealTime)
	enqueue("warm-2", Warmup)
	enqueue("refresh-2", Background)
	enqueue("refresh-1", RealTime) // a connection now waits for it: promoted
	var got []string
	for m.queue.Len() > 0 {
		got = append(got, m.queue.pop().id.ServiceAccount)
	}
	want := []string{"refresh-1", "conn-1", "warm-1", "warm-2", "refresh-2"}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("order %v, want %v", got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	ztest.NoLeaks(t)
	for _, tt := range []struct {
		failures int
		base     time.Duration
	}{{1, 500 * time.Millisecond}, {2, time.Second}, {5, 8 * time.Second}, {9, 128 * time.Second}, {10, 150 * time.Second}, {40, 150 * time.Second}} {
		for range 20 {
			d := backoff(500*time.Millisecond, 150*time.Second, tt.failures)
			if d < tt.base*8/10 || d > tt.base*12/10 {
				t.Fatalf("backoff after %d failures = %v, want %v ±20%%", tt.failures, d, tt.base)
			}
		}
	}
}

func TestRenewAtWindow(t *testing.T) {
	ztest.NoLeaks(t)
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na := nb.Add(24 * time.Hour)
	for range 50 {
		at := renewAt(nb, na)
		if at.After(nb.Add(12*time.Hour)) || at.Before(nb.Add(12*time.Hour-72*time.Minute)) {
			t.Fatalf("renewAt = %v, want within 5%% of life before half life", at)
		}
	}
}
