package proxy

import (
	"errors"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ztunnel-go/ztunnel/internal/conns"
	"github.com/ztunnel-go/ztunnel/internal/drain"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/state"
)

// ConnLimit caps the connections ztunnel holds at once (MAX_CONNECTIONS). Past it, new
// ones are refused at once rather than queued: a flood then costs the attacker a
// reset each, and the workloads already connected keep their memory and fds. Safe for
// concurrent use; one is shared by every proxy of a process.
type ConnLimit struct {
	max  int64
	held atomic.Int64
}

// NewConnLimit allows max connections at once; 0 or less counts without limiting.
func NewConnLimit(max int) *ConnLimit { return &ConnLimit{max: int64(max)} }

// acquire takes a slot; false when full.
func (l *ConnLimit) acquire() bool {
	if l.held.Add(1) > l.max && l.max > 0 {
		l.held.Add(-1)
		return false
	}
	return true
}

func (l *ConnLimit) release() { l.held.Add(-1) }

// Held is the number of connections holding a slot now.
func (l *ConnLimit) Held() int { return int(l.held.Load()) }

var errDrained = errors.New("draining is over: the proxy is closing")

// connTable is the one definition of a live connection: an entry is a socket ztunnel
// holds for a client, an accepted TCP connection (an inbound HBONE carrier among them)
// or an inbound HBONE stream. Every entry holds a MAX_CONNECTIONS slot and the drain,
// is closed by shutdown, re-checked by late enforcement once it is watched, and listed
// in the dump once shown. So an HBONE connection with two streams holds three slots:
// each is an fd ztunnel keeps open for a peer. Safe for concurrent use.
type connTable struct {
	limit *ConnLimit
	drain *drain.Drain
	dump  *conns.Registry // nil-safe

	mu   sync.Mutex
	live map[*liveConn]struct{} // guarded by mu
}

func newConnTable(limit *ConnLimit, d *drain.Drain, dump *conns.Registry) *connTable {
	return &connTable{limit: limit, drain: d, dump: dump, live: map[*liveConn]struct{}{}}
}

// liveConn is one entry. The goroutine serving the connection owns it and calls its
// methods; the table only closes it and runs its check.
type liveConn struct {
	t            *connTable
	releaseDrain func()
	closers      []io.Closer                // guarded by t.mu
	check        func(*state.Snapshot) bool // guarded by t.mu; nil: not enforced late
	undump       func()                     // owner's
	released     bool                       // owner's
}

// admit books a new connection, closed with c: errOverLimit when the table is full,
// errDrained once shutdown has finished with the drain.
func (t *connTable) admit(c io.Closer) (*liveConn, error) {
	if !t.limit.acquire() {
		return nil, errOverLimit
	}
	release, ok := t.drain.Hold()
	if !ok {
		t.limit.release()
		return nil, errDrained
	}
	lc := &liveConn{t: t, releaseDrain: release, closers: []io.Closer{c}, undump: func() {}}
	t.mu.Lock()
	t.live[lc] = struct{}{}
	t.mu.Unlock()
	return lc, nil
}

// carry closes more sockets with the connection (its upstream).
func (lc *liveConn) carry(closers ...io.Closer) {
	lc.t.mu.Lock()
	lc.closers = append(lc.closers, closers...)
	lc.t.mu.Unlock()
}

// watch subjects the connection to late enforcement: check is run on each new state,
// and a false closes it. A nil check does nothing.
func (lc *liveConn) watch(check func(*state.Snapshot) bool) {
	lc.t.mu.Lock()
	lc.check = check
	lc.t.mu.Unlock()
}

// show lists the connection in the dump (workloadState) under w.
func (lc *liveConn) show(w identity.Workload, c *conns.Conn) {
	lc.undump = lc.t.dump.Add(w, c)
}

// release undoes all admit, carry, watch and show did; later calls do nothing.
func (lc *liveConn) release() {
	if lc.released {
		return
	}
	lc.released = true
	lc.undump()
	lc.t.mu.Lock()
	delete(lc.t.live, lc)
	lc.t.mu.Unlock()
	lc.releaseDrain()
	lc.t.limit.release()
}

// closeAll ends every live connection (shutdown, once the drain deadline passed).
func (t *connTable) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for lc := range t.live {
		closeEach(lc.closers)
	}
}

// recheck closes every watched connection whose check now fails.
func (t *connTable) recheck(snap *state.Snapshot) {
	t.mu.Lock()
	var gone [][]io.Closer
	for lc := range t.live {
		if lc.check != nil && !lc.check(snap) {
			gone = append(gone, lc.closers)
		}
	}
	t.mu.Unlock()
	for _, cs := range gone {
		closeEach(cs)
	}
}

func closeEach(cs []io.Closer) {
	for _, c := range cs {
		c.Close()
	}
}
