// Package pool shares HBONE connections between tunnels that may share them: same
// source identity, same expected destination identities, same address, same source IP.
// A connection is never shared across identities, since its client certificate is the
// source workload's.
package pool

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/logging"
)

// Key says which tunnels may share a connection.
type Key struct {
	Src   identity.Identity
	Dst   string // the expected destination identities, sorted, space separated
	Addr  netip.AddrPort
	SrcIP netip.Addr
}

// NewKey builds a key; the order of expected does not matter.
func NewKey(src identity.Identity, expected []identity.Identity, addr netip.AddrPort, srcIP netip.Addr) Key {
	ids := make([]string, len(expected))
	for i, id := range expected {
		ids[i] = id.String()
	}
	slices.Sort(ids)
	return Key{Src: src, Dst: strings.Join(ids, " "), Addr: addr, SrcIP: srcIP}
}

// DialFunc opens a new HBONE connection for a key (TCP, TLS as its source identity,
// HTTP/2 preface). The caller supplies it with each Connect, since it holds the
// certificate and expected identities that the key only names.
type DialFunc func(ctx context.Context) (*hbone.Conn, error)

// Options; zero values take Rust ztunnel's defaults.
type Options struct {
	MaxStreams int // per connection (100); the peer's SETTINGS may lower it
	// Spread: up to this many connections per key are opened before streams share one
	// beyond SpreadAt streams (default 1: Rust's pool, one connection filled to
	// MaxStreams). Ours: each HBONE connection has one read loop and one write lock, so
	// several bulk streams on one use one CPU for their crypto on each side; with
	// Spread at the worker count they use them all. It costs a handshake per extra
	// connection, only for keys with more than SpreadAt streams at once.
	Spread      int
	SpreadAt    int           // streams on a connection before another is opened (default 4)
	IdleTimeout time.Duration // unused connections are closed after this (5 min)
	DialTimeout time.Duration // one connection attempt (10 s)
	Logger      *slog.Logger
}

// ErrClosed is returned once the pool has stopped.
var ErrClosed = errors.New("connection pool closed")

// Pool is safe for concurrent use. Run must be running: it owns the connections'
// read loops and closes idle connections.
type Pool struct {
	opts Options
	log  *slog.Logger
	wg   sync.WaitGroup // one per connection's read loop

	mu      sync.Mutex // guards the fields below
	conns   map[Key][]*hbone.Conn
	dialing map[Key]*dialCall
	closed  bool
}

// dialCall is one handshake in progress; everyone wanting that key waits for it.
type dialCall struct {
	done chan struct{}
	err  error // valid after done is closed
}

// WithDefaults fills the zero values with Rust ztunnel's, as New does.
func (o Options) WithDefaults() Options {
	if o.MaxStreams <= 0 {
		o.MaxStreams = 100
	}
	if o.Spread <= 0 {
		o.Spread = 1
	}
	if o.SpreadAt <= 0 {
		o.SpreadAt = 4
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = 10 * time.Second
	}
	return o
}

// New builds a pool; it starts nothing.
func New(opts Options) *Pool {
	opts = opts.WithDefaults()
	log := opts.Logger
	if log == nil {
		log = logging.Discard()
	}
	return &Pool{opts: opts, log: log, conns: map[Key][]*hbone.Conn{}, dialing: map[Key]*dialCall{}}
}

// Connect opens a tunnel for req over a connection for k, reusing one with room for
// another stream, or dialing one (a single handshake for concurrent callers).
func (p *Pool) Connect(ctx context.Context, k Key, req *hbone.Request, dial DialFunc) (*hbone.Stream, error) {
	for range 3 { // a connection may go away between choosing it and opening the stream
		c, err := p.reserve(ctx, k, dial)
		if err != nil {
			return nil, err
		}
		st, err := c.OpenStream(ctx, req)
		if errors.Is(err, hbone.ErrNoCapacity) || errors.Is(err, hbone.ErrGoAway) {
			continue
		}
		return st, err
	}
	return nil, hbone.ErrNoCapacity
}

// reserve returns a connection on which a stream slot was taken for the caller.
func (p *Pool) reserve(ctx context.Context, k Key, dial DialFunc) (*hbone.Conn, error) {
	p.mu.Lock()
	for {
		if p.closed {
			p.mu.Unlock()
			return nil, ErrClosed
		}
		conns := p.conns[k]
		spread := len(conns) < p.opts.Spread
		if c := tryReserve(conns, p.opts.MaxStreams, spread, p.opts.SpreadAt); c != nil {
			p.mu.Unlock()
			return c, nil
		}
		if call := p.dialing[k]; call != nil {
			if spread { // the next connection is on its way: meanwhile, share these
				if c := tryReserve(conns, p.opts.MaxStreams, false, 0); c != nil {
					p.mu.Unlock()
					return c, nil
				}
			}
			p.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if call.err != nil {
				return nil, call.err
			}
			p.mu.Lock()
			continue
		}
		if err := p.dialLocked(ctx, k, dial); err != nil {
			// A connection that only spread the load failed: the ones there still serve.
			c := tryReserve(p.conns[k], p.opts.MaxStreams, false, 0)
			p.mu.Unlock()
			if c != nil {
				return c, nil
			}
			return nil, err
		}
	}
}

// dialLocked dials a connection for k as the one handshake others wait for. p.mu is
// held on entry and on return, not while dialing.
func (p *Pool) dialLocked(ctx context.Context, k Key, dial DialFunc) error {
	call := &dialCall{done: make(chan struct{})}
	p.dialing[k] = call
	p.mu.Unlock()
	call.err = p.dialOne(ctx, k, dial)
	p.mu.Lock()
	delete(p.dialing, k)
	close(call.done)
	return call.err
}

// tryReserve takes a stream slot on the first connection with room: up to limit
// streams, or only up to spreadAt while the key may still open another connection.
func tryReserve(conns []*hbone.Conn, limit int, spread bool, spreadAt int) *hbone.Conn {
	if spread {
		limit = min(limit, spreadAt)
	}
	for _, c := range conns {
		if c.TryReserve(limit) {
			return c
		}
	}
	return nil
}

// dialOne dials and adds the connection. The dial is not cut short by the first
// caller's ctx, since others may be waiting for the same handshake.
func (p *Pool) dialOne(ctx context.Context, k Key, dial DialFunc) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.opts.DialTimeout)
	defer cancel()
	c, err := dial(dctx)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return ErrClosed
	}
	p.conns[k] = append(p.conns[k], c)
	p.wg.Go(func() {
		err := c.Run()
		p.remove(k, c)
		p.log.Debug("HBONE connection ended", "dst", k.Addr.String(), "src_identity", k.Src.String(), "error", err)
	})
	return nil
}

func (p *Pool) remove(k Key, c *hbone.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	conns := slices.DeleteFunc(p.conns[k], func(x *hbone.Conn) bool { return x == c })
	if len(conns) == 0 {
		delete(p.conns, k)
	} else {
		p.conns[k] = conns
	}
}

// Conns is the number of connections for k (for tests and the dump).
func (p *Pool) Conns(k Key) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns[k])
}

// Run closes connections unused for IdleTimeout until ctx ends; then it closes every
// connection and returns when their read loops have ended.
func (p *Pool) Run(ctx context.Context) {
	t := time.NewTicker(max(p.opts.IdleTimeout/4, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			p.closeAll()
			p.wg.Wait()
			return
		case now := <-t.C:
			p.closeIdle(now)
		}
	}
}

func (p *Pool) closeIdle(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, conns := range p.conns {
		for _, c := range conns {
			if idle := c.IdleSince(); !idle.IsZero() && now.Sub(idle) >= p.opts.IdleTimeout {
				c.Close() // its read loop ends and removes it
			}
		}
	}
}

func (p *Pool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, conns := range p.conns {
		for _, c := range conns {
			c.Close()
		}
	}
}
