package proxy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/conns"
	"github.com/ztunnel-go/ztunnel/internal/drain"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

type closer struct{ closed atomic.Int32 }

func (c *closer) Close() error { c.closed.Add(1); return nil }

// One entry is everything a live connection holds, and one release gives all of it back:
// the MAX_CONNECTIONS slot, the drain, the dump entry, the late-enforcement check.
func TestConnTableReleaseUndoesAdmit(t *testing.T) {
	ztest.NoLeaks(t)
	limit, d, dump := NewConnLimit(2), drain.New(), conns.New()
	tab := newConnTable(limit, d, dump)
	a, b := &closer{}, &closer{}
	la, err := tab.admit(a)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := tab.admit(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tab.admit(&closer{}); !errors.Is(err, errOverLimit) {
		t.Fatalf("third admit past MAX_CONNECTIONS=2: %v, want errOverLimit", err)
	}
	up := &closer{}
	la.carry(up)
	la.watch(func(*state.Snapshot) bool { return false })
	la.show(identity.Workload{UID: "uid-a"}, &conns.Conn{Src: "10.0.0.1:1"})
	if n := len(dump.Dump()["uid-a"].Outbound); n != 1 {
		t.Fatalf("dump lists %d connections of uid-a, want 1", n)
	}
	tab.recheck(state.NewStore().Snapshot())
	if a.closed.Load() != 1 || up.closed.Load() != 1 || b.closed.Load() != 0 {
		t.Errorf("recheck closed a %d, its upstream %d, unwatched b %d times; want 1, 1, 0",
			a.closed.Load(), up.closed.Load(), b.closed.Load())
	}
	la.release()
	la.release() // the owner's defer and an early release may both run
	if limit.Held() != 1 || len(dump.Dump()) != 0 {
		t.Errorf("after release: %d slots held, dump %v; want 1 and empty", limit.Held(), dump.Dump())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if open := d.Wait(ctx); open != 1 {
		t.Errorf("drain waits for %d holders, want 1 (b)", open)
	}
	tab.closeAll()
	if b.closed.Load() != 1 {
		t.Error("closeAll left b open")
	}
	lb.release()
	if _, err := tab.admit(&closer{}); !errors.Is(err, errDrained) || limit.Held() != 0 {
		t.Errorf("admit after the drain finished: %v with %d slots held, want errDrained and 0", err, limit.Held())
	}
}
