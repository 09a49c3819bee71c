package logging

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Throttle bounds the log lines that peers can cause. A peer can fail handshakes, send
// bad requests or break HTTP/2 as fast as it can open sockets; logging each would let
// it fill the disk and bury everything else. Per kind of line, at most Burst are
// written in each second; the rest are only counted, and the next line of that kind
// written carries suppressed=N, the number left out since the one before. Counting
// every event is the metrics' job, not the log's. Safe for concurrent use.
type Throttle struct {
	burst int

	mu    sync.Mutex // guards kinds
	kinds map[string]*throttled
}

type throttled struct {
	window     time.Time // start of the current one-second window
	written    int       // lines written in it
	suppressed int       // lines left out since the last one written
}

// NewThrottle allows burst lines of each kind a second (at least 1).
func NewThrottle(burst int) *Throttle {
	return &Throttle{burst: max(burst, 1), kinds: map[string]*throttled{}}
}

// allow reports whether a line of kind may be written now, and how many of the kind
// were suppressed before it.
func (t *Throttle) allow(kind string, now time.Time) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := t.kinds[kind]
	if k == nil {
		k = &throttled{window: now}
		t.kinds[kind] = k
	}
	if now.Sub(k.window) >= time.Second {
		k.window, k.written = now, 0
	}
	if k.written >= t.burst {
		k.suppressed++
		return false, 0
	}
	k.written++
	n := k.suppressed
	k.suppressed = 0
	return true, n
}

// Log writes a record of kind through l unless the kind is over its budget.
func (t *Throttle) Log(l *slog.Logger, level slog.Level, kind, msg string, args ...any) {
	if !l.Enabled(context.Background(), level) {
		return
	}
	ok, suppressed := t.allow(kind, time.Now())
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	l.Log(context.Background(), level, msg, args...)
}
