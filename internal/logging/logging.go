package logging

import (
	"io"
	"log/slog"
)

// New builds the process logger and its live levels from LOG_FORMAT and RUST_LOG values.
func New(w io.Writer, format, levelSpec string) (*slog.Logger, *Levels, error) {
	spec, err := ParseSpec(levelSpec)
	if err != nil {
		return nil, nil, err
	}
	levels := NewLevels(spec)
	return slog.New(NewHandler(w, format == "json", levels)), levels, nil
}

// Scoped returns the logger of one component; its level is set by that name.
func Scoped(l *slog.Logger, scope string) *slog.Logger {
	return l.With(ScopeKey, scope)
}

// Span adds Rust-style span context, rendered as name{k=v …} before the message.
func Span(l *slog.Logger, name string, kv ...any) *slog.Logger {
	return l.With(slog.Group(SpanKey, append([]any{"name", name}, kv...)...))
}

// Discard is a logger for code paths that were given none.
func Discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
