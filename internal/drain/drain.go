// Package drain coordinates a graceful shutdown: work in flight holds the drain open,
// shutdown announces itself to that work, then waits for it until a deadline.
package drain

import (
	"context"
	"sync"
)

// Drain is safe for concurrent use.
type Drain struct {
	mu       sync.Mutex
	holders  int           // guarded by mu
	started  bool          // guarded by mu
	draining chan struct{} // closed by Start
	empty    chan struct{} // closed when started and holders reaches 0
}

// New returns a drain that has not started.
func New() *Drain {
	return &Drain{draining: make(chan struct{}), empty: make(chan struct{})}
}

// Hold registers work in flight; call release when it ends. Once the drain has
// finished (started, and nothing held), Hold refuses (ok is false). During the drain it
// still accepts: listeners stay open for a moment after Start so that a successor can
// take over (proxy.handOver), and a connection the kernel had already given them is
// work begun before the drain; refusing it would cut off a client that did nothing
// wrong.
func (d *Drain) Hold() (release func(), ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started && d.holders == 0 {
		return func() {}, false
	}
	d.holders++
	var once sync.Once
	return func() { once.Do(d.release) }, true
}

func (d *Drain) release() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.holders--
	if d.started && d.holders == 0 {
		close(d.empty)
	}
}

// Draining is closed once shutdown starts: long-lived work (an idle tunnel, a watch)
// selects on it to finish early.
func (d *Drain) Draining() <-chan struct{} { return d.draining }

// Start begins draining; later calls do nothing.
func (d *Drain) Start() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.started {
		return
	}
	d.started = true
	close(d.draining)
	if d.holders == 0 {
		close(d.empty)
	}
}

// Wait starts draining and returns when all work has ended (0), or when ctx ends with
// the number of holders still open.
func (d *Drain) Wait(ctx context.Context) int {
	d.Start()
	select {
	case <-d.empty:
		return 0
	case <-ctx.Done():
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.holders
	}
}
