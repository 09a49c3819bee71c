package config

import (
	"reflect"
	"strconv"
)

// HTTP2 are HBONE's HTTP/2 settings, both ways. Each field is one variable and its
// tag is that variable's row of the table: name, default, bounds (those RFC 9113
// allows, so that a typo fails at start-up rather than as a protocol error on the first
// connection) and meaning. The loader reads the field from its tag, and the README's
// table lists the row: a new setting is a field here, its line in app's options
// mapping, and its use in hbone. A default naming another field's variable is that
// field's value.
type HTTP2 struct {
	StreamWindow      uint32 `env:"HTTP2_STREAM_WINDOW_SIZE" default:"4194304" min:"65535" max:"2147483647" doc:"HBONE stream flow-control window (bytes)"`
	ConnWindow        uint32 `env:"HTTP2_CONNECTION_WINDOW_SIZE" default:"16777216" min:"65535" max:"2147483647" doc:"HBONE connection flow-control window (bytes)"`
	FrameSize         uint32 `env:"HTTP2_FRAME_SIZE" default:"1048576" min:"16384" max:"16777215" doc:"HBONE max frame size (bytes)"`
	MaxStreams        uint32 `env:"HTTP2_MAX_CONCURRENT_STREAMS" default:"200" min:"1" max:"65536" doc:"streams a peer may open, and handlers that may run, per inbound HBONE connection. Ours"`
	MaxHeaderListSize uint32 `env:"HTTP2_MAX_HEADER_LIST_SIZE" default:"65536" min:"1024" max:"1048576" doc:"decoded CONNECT header bytes accepted; more is answered 431. Ours"`
	MaxQueuedControl  uint32 `env:"HTTP2_MAX_QUEUED_CONTROL_FRAMES" default:"10000" min:"16" max:"1048576" doc:"answers (PING, SETTINGS ACK) queued for a peer that does not read them; past it GOAWAY(ENHANCE_YOUR_CALM). Ours"`
	MaxEmptyData      uint32 `env:"HTTP2_MAX_EMPTY_DATA_FRAMES" default:"100" min:"1" max:"1048576" doc:"DATA frames in a row with no payload; past it GOAWAY(ENHANCE_YOUR_CALM). Ours"`
	// 0, as unset, is the default: the stream limit.
	ResetsPerSecond uint32 `env:"HTTP2_MAX_RESETS_PER_SECOND" default:"HTTP2_MAX_CONCURRENT_STREAMS" min:"0" max:"1048576" doc:"streams reset before their answer, or refused, per second per connection (Rapid Reset, MadeYouReset); past it GOAWAY(ENHANCE_YOUR_CALM). Ours"`
}

// taggedVariables are the table rows of a struct's tagged fields, in field order.
func taggedVariables(t reflect.Type) []Variable {
	var out []Variable
	for i := range t.NumField() {
		tag := t.Field(i).Tag
		out = append(out, Variable{Name: tag.Get("env"), Default: tag.Get("default"), Meaning: tag.Get("doc")})
	}
	return out
}

// loadTagged fills each uint32 field of the struct *dst points to from its variable,
// within its bounds; a default naming another field's variable takes that field's value
// (read first: it comes earlier), and so does 0 when its lower bound allows 0.
func (r *reader) loadTagged(dst any) {
	v := reflect.ValueOf(dst).Elem()
	byName := map[string]uint64{}
	for i := range v.NumField() {
		tag := v.Type().Field(i).Tag
		name := tag.Get("env")
		def, err := strconv.ParseUint(tag.Get("default"), 10, 32)
		other, isRef := byName[tag.Get("default")]
		if isRef {
			def = other
		} else if err != nil {
			panic("config: " + name + ": default is neither a number nor an earlier variable")
		}
		lo, _ := strconv.ParseUint(tag.Get("min"), 10, 32)
		hi, _ := strconv.ParseUint(tag.Get("max"), 10, 32)
		n := r.uint(name, def, lo, hi)
		if n == 0 && isRef {
			n = other
		}
		byName[name] = n
		v.Field(i).SetUint(n)
	}
}
