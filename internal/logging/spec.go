// Package logging gives ztunnel's components slog loggers whose output reads like Rust
// ztunnel's (plain or JSON), with levels per component that change at run time.
package logging

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
)

// Levels beyond slog's four, named as RUST_LOG names them.
const (
	LevelTrace = slog.LevelDebug - 4
	LevelOff   = slog.LevelError + 100
)

// Spec is a parsed RUST_LOG-style directive list: a default level and levels for named
// components, e.g. "info,xds=debug,access=off".
type Spec struct {
	Default    slog.Level
	HasDefault bool // a bare level was given (else Default is info)
	Scopes     map[string]slog.Level
}

// ParseSpec accepts "level", "component=level" and "component:level" (the admin
// endpoint's form), comma separated. A component may be written as a Rust module path
// ("ztunnel::xds::client"); it then applies to every component named by one of its
// segments after "ztunnel", so Rust-era directives keep working.
func ParseSpec(s string) (Spec, error) {
	spec := Spec{Default: slog.LevelInfo, Scopes: map[string]slog.Level{}}
	for _, d := range strings.Split(s, ",") {
		d = strings.TrimSpace(d)
		if d == "" {
			continue
		}
		target, lvl, hasTarget := cutDirective(d)
		level, err := parseLevel(lvl)
		if err != nil {
			return Spec{}, fmt.Errorf("directive %q: %w", d, err)
		}
		if !hasTarget {
			spec.Default, spec.HasDefault = level, true
			continue
		}
		if target == "" {
			return Spec{}, fmt.Errorf("directive %q: empty component", d)
		}
		for _, scope := range scopesOf(target) {
			spec.Scopes[scope] = level
		}
	}
	return spec, nil
}

func cutDirective(d string) (target, level string, ok bool) {
	if t, l, found := strings.Cut(d, "="); found {
		return t, l, true
	}
	// "a::b:debug": the last single colon separates the level.
	if i := strings.LastIndex(d, ":"); i >= 0 && (i == 0 || d[i-1] != ':') {
		return d[:i], d[i+1:], true
	}
	return "", d, false
}

func scopesOf(target string) []string {
	if !strings.Contains(target, "::") {
		return []string{target}
	}
	var out []string
	for _, seg := range strings.Split(target, "::") {
		if seg != "" && seg != "ztunnel" {
			out = append(out, seg)
		}
	}
	if len(out) == 0 { // "ztunnel" alone means everything of ours
		out = []string{"*"}
	}
	return out
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return LevelTrace, nil
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	case "off":
		return LevelOff, nil
	}
	return 0, fmt.Errorf("unknown level %q (want trace, debug, info, warn, error or off)", s)
}

// LevelName is the lowercase name RUST_LOG and the JSON format use.
func LevelName(l slog.Level) string {
	switch {
	case l <= LevelTrace:
		return "trace"
	case l <= slog.LevelDebug:
		return "debug"
	case l <= slog.LevelInfo:
		return "info"
	case l <= slog.LevelWarn:
		return "warn"
	case l < LevelOff:
		return "error"
	}
	return "off"
}

// String renders the spec back in RUST_LOG syntax, components sorted.
func (s Spec) String() string {
	parts := []string{LevelName(s.Default)}
	names := make([]string, 0, len(s.Scopes))
	for n := range s.Scopes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		parts = append(parts, n+"="+LevelName(s.Scopes[n]))
	}
	return strings.Join(parts, ",")
}

// level is the threshold for one component.
func (s Spec) level(scope string) slog.Level {
	if l, ok := s.Scopes[scope]; ok {
		return l
	}
	if l, ok := s.Scopes["*"]; ok {
		return l
	}
	return s.Default
}
