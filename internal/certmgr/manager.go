// Package certmgr keeps one certificate per workload identity that ztunnel acts for:
// fetched on demand or ahead of time, renewed at half life, and kept while renewal fails
// for as long as it is still valid.
package certmgr

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/logging"
)

// Fetcher obtains a certificate: the Istio CA client, or the built-in CA.
type Fetcher interface {
	Fetch(ctx context.Context, id identity.Identity) (*identity.Cert, error)
}

// Options tune the manager; zero values take Rust ztunnel's defaults.
type Options struct {
	MaxConcurrent  int           // CSRs in flight at once (8)
	InitialBackoff time.Duration // first retry delay after a failure (500 ms)
	MaxBackoff     time.Duration // retry delay cap (150 s)
	FetchTimeout   time.Duration // one attempt's bound (30 s)
	Logger         *slog.Logger
}

// Errors a waiting Get can end with besides the fetch's own.
var (
	ErrForgotten = errors.New("certificate no longer wanted: its last workload left")
	ErrClosed    = errors.New("certificate manager stopped")
)

// Manager is safe for concurrent use. New starts nothing; Run does the fetching.
type Manager struct {
	fetcher Fetcher
	opts    Options
	log     *slog.Logger
	wake    chan struct{} // capacity 1: nudges Run's dispatcher

	mu       sync.Mutex // guards the fields below and every entry's fields
	entries  map[identity.Identity]*entry
	queue    queue
	seq      uint64
	inflight int
	closed   bool
}

// entry is one identity's cache slot. Its fields are guarded by Manager.mu.
type entry struct {
	id       identity.Identity
	cert     *identity.Cert // newest certificate obtained; may have expired
	err      error          // the last attempt's failure; nil after a success
	fetching bool
	failures int           // consecutive failures, for backoff
	timer    *time.Timer   // the next renewal or retry
	changed  chan struct{} // closed (and replaced) when an attempt ends
	// Queue bookkeeping: index in the heap (-1 when not queued), priority, arrival.
	index int
	prio  Priority
	seq   uint64
}

// New builds a manager over f.
func New(f Fetcher, opts Options) *Manager {
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 8
	}
	if opts.InitialBackoff <= 0 {
		opts.InitialBackoff = 500 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 150 * time.Second
	}
	if opts.FetchTimeout <= 0 {
		opts.FetchTimeout = 30 * time.Second
	}
	log := opts.Logger
	if log == nil {
		log = logging.Discard()
	}
	return &Manager{fetcher: f, opts: opts, log: log, wake: make(chan struct{}, 1),
		entries: map[identity.Identity]*entry{}}
}

// Get returns a valid certificate for id, fetching it at RealTime priority if there is
// none, and waiting for that attempt (or ctx). It never returns an expired certificate:
// when the last one expired and renewal fails, it returns the failure.
func (m *Manager) Get(ctx context.Context, id identity.Identity) (*identity.Cert, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	e := m.entryLocked(id)
	if c := e.cert; c != nil && c.ValidAt(time.Now()) {
		m.mu.Unlock()
		return c, nil
	}
	m.enqueueLocked(e, RealTime)
	changed := e.changed
	m.mu.Unlock()

	select {
	case <-changed:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if e.cert != nil && e.cert.ValidAt(time.Now()) {
		return e.cert, nil
	}
	if e.err != nil {
		return nil, e.err
	}
	return nil, errors.New("certificate unavailable")
}

// Prefetch asks for id ahead of need, at Warmup priority, unless it is cached.
func (m *Manager) Prefetch(id identity.Identity) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if e := m.entryLocked(id); e.cert == nil && !e.fetching {
		m.enqueueLocked(e, Warmup)
	}
}

// Forget drops id: no more renewals, and waiting Gets end with ErrForgotten.
func (m *Manager) Forget(id identity.Identity) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[id]; e != nil {
		m.dropLocked(e, ErrForgotten)
	}
}

// Sync makes the cache hold exactly ids: it prefetches new ones and forgets the rest.
func (m *Manager) Sync(ids []identity.Identity) {
	want := make(map[identity.Identity]bool, len(ids))
	for _, id := range ids {
		want[id] = true
		m.Prefetch(id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, e := range m.entries {
		if !want[id] {
			m.dropLocked(e, ErrForgotten)
		}
	}
}

func (m *Manager) entryLocked(id identity.Identity) *entry {
	e := m.entries[id]
	if e == nil {
		e = &entry{id: id, index: -1, changed: make(chan struct{})}
		m.entries[id] = e
	}
	return e
}

// enqueueLocked asks for a fetch of e; an attempt in flight already serves the asker.
func (m *Manager) enqueueLocked(e *entry, p Priority) {
	if e.fetching || m.closed || m.entries[e.id] != e {
		return
	}
	m.seq++
	m.queue.push(e, p, m.seq)
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

func (m *Manager) dropLocked(e *entry, why error) {
	delete(m.entries, e.id)
	m.queue.remove(e)
	if e.timer != nil {
		e.timer.Stop()
	}
	e.err = why
	close(e.changed)
	e.changed = make(chan struct{})
}

// Status is one identity's state, for the config dump.
type Status struct {
	ID    identity.Identity
	State string         // "Available", "Initializing" or "Unavailable: <error>"
	Cert  *identity.Cert // set when Available
}

// Dump lists every identity, sorted.
func (m *Manager) Dump() []Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	out := make([]Status, 0, len(m.entries))
	for _, e := range m.entries {
		s := Status{ID: e.id, State: "Initializing"}
		switch {
		case e.cert != nil && e.cert.ValidAt(now):
			s.State, s.Cert = "Available", e.cert
		case e.err != nil:
			s.State = "Unavailable: " + e.err.Error()
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID.String() < out[j].ID.String() })
	return out
}

// CAs are the roots and intermediates of the certificates held, each once: the mesh CAs
// a CRL may be signed by.
func (m *Manager) CAs() []*x509.Certificate {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []*x509.Certificate
	for _, e := range m.entries {
		if e.cert == nil {
			continue
		}
		for _, c := range append(slices.Clone(e.cert.Intermediates), e.cert.Roots...) {
			if !seen[string(c.Raw)] {
				seen[string(c.Raw)] = true
				out = append(out, c)
			}
		}
	}
	return out
}
