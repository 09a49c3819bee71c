package logging

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Attribute keys with a meaning to the handler rather than to the reader.
const (
	// ScopeKey names the component ("xds", "inbound", "access"), Rust's tracing target.
	ScopeKey = "scope"
	// SpanKey carries a slog.Group rendered like a Rust span: inbound{id=… peer_ip=…}.
	SpanKey = "span"
)

// Handler formats records as Rust ztunnel does. Handlers derived by With* share the
// output and its mutex; everything else in a Handler is immutable after creation.
type Handler struct {
	out    *output
	levels *Levels
	json   bool
	scope  string
	span   string // pre-rendered "name{k=v …}", or ""
	spanKV []slog.Attr
	attrs  []slog.Attr // pre-bound attributes, keys already group-prefixed
	group  string      // prefix for keys of later attributes, "a.b."
}

type output struct {
	mu sync.Mutex // serializes writes to w
	w  io.Writer
}

// NewHandler writes plain lines, or JSON objects when jsonFormat is set.
func NewHandler(w io.Writer, jsonFormat bool, levels *Levels) *Handler {
	return &Handler{out: &output{w: w}, levels: levels, json: jsonFormat}
}

// Enabled consults the live per-component levels.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool {
	return h.levels.Enabled(h.scope, l)
}

// WithAttrs binds attributes; "scope" and "span" are taken as the record's context.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append([]slog.Attr(nil), h.attrs...)
	for _, a := range as {
		switch {
		case a.Key == ScopeKey && h.group == "":
			c.scope = a.Value.String()
		case a.Key == SpanKey && a.Value.Kind() == slog.KindGroup:
			c.spanKV = a.Value.Group()
			c.span = renderSpan(a.Value.Group())
		default:
			a.Key = h.group + a.Key
			c.attrs = append(c.attrs, a)
		}
	}
	return &c
}

// WithGroup prefixes later keys with "name.", which gives access-log keys like src.addr.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.group = h.group + name + "."
	return &c
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Handle renders one record; it allocates only through the pooled buffer.
func (h *Handler) Handle(_ context.Context, r slog.Record) error {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	t := r.Time
	if t.IsZero() {
		t = time.Now()
	}
	if h.json {
		b = h.appendJSON(b, t, r)
	} else {
		b = h.appendPlain(b, t, r)
	}
	h.out.mu.Lock()
	_, err := h.out.w.Write(b)
	h.out.mu.Unlock()
	*bp = b
	bufPool.Put(bp)
	return err
}

func (h *Handler) appendPlain(b []byte, t time.Time, r slog.Record) []byte {
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, ' ')
	lvl := strings.ToUpper(LevelName(r.Level))
	for i := len(lvl); i < 5; i++ {
		b = append(b, ' ')
	}
	b = append(b, lvl...)
	b = append(b, ' ')
	if h.span != "" {
		b = append(b, h.span...)
		b = append(b, ": "...)
	}
	if h.scope != "" {
		b = append(b, h.scope...)
		b = append(b, ": "...)
	}
	b = append(b, r.Message...)
	for _, a := range h.attrs {
		b = appendPlainAttr(b, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		b = appendPlainAttr(b, h.group, a)
		return true
	})
	return append(b, '\n')
}

func appendPlainAttr(b []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			b = appendPlainAttr(b, prefix+a.Key+".", g)
		}
		return b
	}
	if a.Key == "" {
		return b
	}
	b = append(b, ' ')
	b = append(b, prefix...)
	b = append(b, a.Key...)
	b = append(b, '=')
	return appendPlainValue(b, a.Value)
}

func appendPlainValue(b []byte, v slog.Value) []byte {
	switch v.Kind() {
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindDuration:
		return append(b, v.Duration().String()...)
	}
	s := v.String()
	if needsQuote(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for _, c := range s {
		if c <= ' ' || c == '"' || c == '=' || c == 0x7f || c == utf8.RuneError {
			return true
		}
	}
	return false
}

func renderSpan(group []slog.Attr) string {
	if len(group) == 0 {
		return ""
	}
	name := group[0].Value.String() // first attribute: the span's name
	b := append([]byte(name), '{')
	for i, a := range group[1:] {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, a.Key...)
		b = append(b, '=')
		b = appendPlainValue(b, a.Value.Resolve())
	}
	return string(append(b, '}'))
}

func (h *Handler) appendJSON(b []byte, t time.Time, r slog.Record) []byte {
	b = append(b, `{"level":`...)
	b = strconv.AppendQuote(b, LevelName(r.Level))
	b = append(b, `,"time":"`...)
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, '"')
	if h.scope != "" {
		b = appendJSONKV(b, ScopeKey, slog.StringValue(h.scope))
	}
	b = appendJSONKV(b, "message", slog.StringValue(r.Message))
	for _, a := range h.spanKV[min(1, len(h.spanKV)):] {
		b = appendJSONAttr(b, "", a)
	}
	for _, a := range h.attrs {
		b = appendJSONAttr(b, "", a)
	}
	r.Attrs(func(a slog.Attr) bool {
		b = appendJSONAttr(b, h.group, a)
		return true
	})
	return append(b, "}\n"...)
}

func appendJSONAttr(b []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Value.Kind() == slog.KindGroup {
		for _, g := range a.Value.Group() {
			b = appendJSONAttr(b, prefix+a.Key+".", g)
		}
		return b
	}
	if a.Key == "" {
		return b
	}
	return appendJSONKV(b, prefix+a.Key, a.Value)
}

func appendJSONKV(b []byte, key string, v slog.Value) []byte {
	b = append(b, ',')
	b = appendJSONString(b, key)
	b = append(b, ':')
	switch v.Kind() {
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10)
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10)
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool())
	case slog.KindFloat64:
		return strconv.AppendFloat(b, v.Float64(), 'g', -1, 64)
	}
	return appendJSONString(b, v.String())
}

func appendJSONString(b []byte, s string) []byte {
	enc, err := json.Marshal(s)
	if err != nil { // cannot happen for a string; keep the line valid regardless
		return append(b, `""`...)
	}
	return append(b, enc...)
}
