package app

import (
	"reflect"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/pool"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// The loader takes each default from the variables table (checked against the README in
// internal/config), and a config with nothing set maps to exactly the options that a
// component's zero value gets. So a component's own default only repeats the table for
// callers without a config (tests, embedders), and the three cannot drift apart.
func TestConfigDefaultsAreTheComponents(t *testing.T) {
	ztest.NoLeaks(t)
	c, err := config.Load(config.Source{NumCPU: 2, IPv6: func() bool { return true }, FileExists: func(string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	o := proxyOptions(c)
	got, want := o.HBONE, hbone.Settings{}.WithDefaults()
	v := reflect.ValueOf(got)
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.Type.Kind() == reflect.Uint32 && v.Field(i).IsZero() {
			t.Errorf("hbone.Settings.%s is not mapped from the config", f.Name)
		}
	}
	got.PingInterval, got.PingTimeout = want.PingInterval, want.PingTimeout // Rust's fixed values, not settings
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the config's HBONE defaults\n %+v\ndiffer from hbone's\n %+v", got, want)
	}
	if got, want := o.Pool, (pool.Options{}).WithDefaults(); got.MaxStreams != want.MaxStreams || got.IdleTimeout != want.IdleTimeout {
		t.Errorf("the config's pool defaults %+v differ from the pool's %+v", got, want)
	}
	if got := o.Timeouts.Handshake; got != mtls.HandshakeTimeout {
		t.Errorf("TLS_HANDSHAKE_TIMEOUT defaults to %s, the proxy's zero value to %s", got, mtls.HandshakeTimeout)
	}
}

// Every HTTP2_* variable reaches hbone: set to a value of its own, each shows in the
// settings app hands the proxies.
func TestEveryHTTP2VariableReachesHBONE(t *testing.T) {
	ztest.NoLeaks(t)
	env := []string{"HTTP2_STREAM_WINDOW_SIZE=70001", "HTTP2_CONNECTION_WINDOW_SIZE=70002", "HTTP2_FRAME_SIZE=17003",
		"HTTP2_MAX_CONCURRENT_STREAMS=104", "HTTP2_MAX_HEADER_LIST_SIZE=2005", "HTTP2_MAX_QUEUED_CONTROL_FRAMES=106",
		"HTTP2_MAX_EMPTY_DATA_FRAMES=107", "HTTP2_MAX_RESETS_PER_SECOND=108"}
	c, err := config.Load(config.Source{Env: env, NumCPU: 2, IPv6: func() bool { return true }, FileExists: func(string) bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	want := hbone.Settings{StreamWindow: 70001, ConnWindow: 70002, MaxFrameSize: 17003, MaxStreams: 104, MaxHeaderListSize: 2005,
		MaxQueuedControl: 106, MaxEmptyData: 107, ResetsPerSecond: 108}
	if got := proxyOptions(c).HBONE; !reflect.DeepEqual(got, want) {
		t.Errorf("HBONE settings\n %+v\nwant\n %+v", got, want)
	}
}
