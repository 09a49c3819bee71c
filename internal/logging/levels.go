package logging

import (
	"log/slog"
	"sync/atomic"
)

// Levels is the live level configuration, shared by every handler of one process and
// changed by the admin /logging endpoint. Reads are lock-free.
type Levels struct {
	initial Spec                 // immutable: what Reset returns to
	cur     atomic.Pointer[Spec] // replaced whole on every change
}

// NewLevels starts at spec.
func NewLevels(spec Spec) *Levels {
	l := &Levels{initial: spec}
	l.cur.Store(&spec)
	return l
}

// Enabled reports whether scope logs at level.
func (l *Levels) Enabled(scope string, level slog.Level) bool {
	return level >= l.cur.Load().level(scope)
}

// Current returns the spec in force.
func (l *Levels) Current() Spec { return *l.cur.Load() }

// Apply merges directives into the current spec: "debug" changes the default,
// "xds=debug" one component, as Rust ztunnel's /logging?level= does.
func (l *Levels) Apply(directives string) error {
	upd, err := ParseSpec(directives)
	if err != nil {
		return err
	}
	for {
		old := l.cur.Load()
		next := Spec{Default: old.Default, Scopes: make(map[string]slog.Level, len(old.Scopes))}
		for k, v := range old.Scopes {
			next.Scopes[k] = v
		}
		if upd.HasDefault {
			next.Default = upd.Default
		}
		for k, v := range upd.Scopes {
			next.Scopes[k] = v
		}
		if l.cur.CompareAndSwap(old, &next) {
			return nil
		}
	}
}

// Reset returns to the start-up spec.
func (l *Levels) Reset() {
	s := l.initial
	l.cur.Store(&s)
}
