package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/sockopt"
)

var (
	errOverLimit      = errors.New("connection limit reached (MAX_CONNECTIONS)")
	errIdle           = errors.New("idle timeout (CONNECTION_IDLE_TIMEOUT)")
	errHalfClosedIdle = errors.New("half-closed and idle (HALF_CLOSED_TIMEOUT)")
)

// overLimit logs a refusal at the cap, a few times a second: a flood must not become
// a log flood.
func (p *Proxy) overLimit(where any) {
	p.noise.Log(p.log, slog.LevelWarn, noiseCap, "connection refused", "addr", fmt.Sprint(where), "error", errOverLimit,
		"held", p.deps.ConnLimit.Held())
}

// resetConn refuses an accepted connection with a RST: the client learns at once.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// watchdog ends a proxied connection that carries nothing for too long: IdleTimeout
// while both directions are open, HalfClosedTimeout once one has ended (its peer
// may never finish, the leak of istio/ztunnel#1629). Activity comes from the kernel
// (TCP_INFO of the TCP sides), so the copy loops pay nothing for it. A timer, not a
// goroutine, waits.
type watchdog struct {
	limits Timeouts
	quiet  func() time.Duration // how long the connection has carried nothing
	abort  func()

	mu      sync.Mutex // guards everything below
	timer   *time.Timer
	half    bool  // one direction has ended
	expired error // why the watchdog ended the connection
	stopped bool
}

// startWatchdog watches the TCP sides of a connection; nil when no timeout applies.
func startWatchdog(l Timeouts, abort func(), sides ...halfConn) *watchdog {
	if l.Idle <= 0 && l.HalfClosed <= 0 {
		return nil
	}
	var socks []*net.TCPConn
	for _, s := range sides {
		if tc, ok := s.(*net.TCPConn); ok {
			socks = append(socks, tc)
		}
	}
	if len(socks) == 0 {
		return nil
	}
	return newWatchdog(l, abort, func() time.Duration { return quietFor(socks) })
}

// newWatchdog starts the timer; quiet says how long the connection has been silent.
func newWatchdog(l Timeouts, abort func(), quiet func() time.Duration) *watchdog {
	w := &watchdog{limits: l, abort: abort, quiet: quiet}
	w.mu.Lock()
	defer w.mu.Unlock()
	if t := w.limitLocked(); t > 0 {
		w.timer = time.AfterFunc(t, w.check)
	}
	return w
}

// limitLocked is the timeout in force: the shorter of those that apply.
func (w *watchdog) limitLocked() time.Duration {
	t := w.limits.Idle
	if h := w.limits.HalfClosed; w.half && h > 0 && (t <= 0 || h < t) {
		t = h
	}
	return t
}

// halfClosed notes that one direction has ended.
func (w *watchdog) halfClosed() {
	if w == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.half || w.stopped {
		return
	}
	w.half = true
	t := w.limitLocked()
	switch {
	case t <= 0:
	case w.timer == nil:
		w.timer = time.AfterFunc(t, w.check)
	default:
		w.timer.Reset(t)
	}
}

func (w *watchdog) check() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	limit, quiet := w.limitLocked(), w.quiet()
	if quiet < limit {
		w.timer.Reset(limit - quiet)
		w.mu.Unlock()
		return
	}
	w.expired = errIdle
	if w.half {
		w.expired = errHalfClosedIdle
	}
	w.stopped = true
	w.mu.Unlock()
	w.abort()
}

// quietFor is how long the sockets have carried nothing: since the most recent
// activity of any of them.
func quietFor(socks []*net.TCPConn) time.Duration {
	quiet := time.Duration(-1)
	for _, s := range socks {
		d, err := sockopt.SinceData(s)
		if err != nil { // closed meanwhile, or no TCP_INFO: not ours to judge
			return 0
		}
		if quiet < 0 || d < quiet {
			quiet = d
		}
	}
	return quiet
}

// stop ends the watch; it returns why the watchdog closed the connection, if it did.
func (w *watchdog) stop() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
	return w.expired
}
