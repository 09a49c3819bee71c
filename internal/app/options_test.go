package app

import (
	"reflect"
	"strconv"
	"strings"
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

// Every HTTP2_* variable reaches hbone: set one step off its default, each changes the
// settings app hands the proxies. The test reads the variables table, so a new knob is
// checked without an edit here.
func TestEveryHTTP2VariableReachesHBONE(t *testing.T) {
	ztest.NoLeaks(t)
	load := func(env ...string) *config.Config {
		c, err := config.Load(config.Source{Env: env, NumCPU: 2, IPv6: func() bool { return true }, FileExists: func(string) bool { return true }})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	base := proxyOptions(load()).HBONE
	checked := 0
	for _, v := range config.Variables() {
		if !strings.HasPrefix(v.Name, "HTTP2_") {
			continue
		}
		value := "7" // a default naming another variable: any value of its own
		if n, err := strconv.ParseUint(v.Default, 10, 32); err == nil {
			value = strconv.FormatUint(n+1, 10)
		}
		if got := proxyOptions(load(v.Name + "=" + value)).HBONE; reflect.DeepEqual(got, base) {
			t.Errorf("%s=%s does not reach hbone.Settings", v.Name, value)
		}
		checked++
	}
	if checked < 8 {
		t.Errorf("only %d HTTP2_* variables in the table", checked)
	}
}

// ENABLE_PROXY=false: node mode listens on none of the proxy ports (the DNS proxy and
// the admin, stats and readiness ports stay), as Rust runs only the DNS server then.
func TestProxyDisabledListensNowhere(t *testing.T) {
	ztest.NoLeaks(t)
	for _, tt := range []struct {
		env  []string
		want int
	}{{nil, 3}, {[]string{"ENABLE_PROXY=false"}, 0}, {[]string{"UNSTABLE_ENABLE_SOCKS5=true", "ENABLE_PROXY=false"}, 0}} {
		c, err := config.Load(config.Source{Env: tt.env, NumCPU: 2, IPv6: func() bool { return true }, FileExists: func(string) bool { return true }})
		if err != nil {
			t.Fatal(err)
		}
		l := nodeListen(c)
		if n := len(l.Outbound) + len(l.Inbound) + len(l.InboundPlaintext) + len(l.Socks5); n != tt.want {
			t.Errorf("%v: %d proxy listeners, want %d", tt.env, n, tt.want)
		}
	}
}

// The env switches that shape what the proxy logs and answers reach its options.
func TestProxySwitchesReachProxy(t *testing.T) {
	ztest.NoLeaks(t)
	for _, tt := range []struct {
		env       []string
		baggage   bool
		authzInfo bool
	}{{nil, true, false}, {[]string{"ENABLE_RESPONSE_BAGGAGE=false", "AUTHZ_POLICY_INFO_LOGGING=true"}, false, true}} {
		c, err := config.Load(config.Source{Env: tt.env, NumCPU: 2, IPv6: func() bool { return true }, FileExists: func(string) bool { return true }})
		if err != nil {
			t.Fatal(err)
		}
		if o := proxyOptions(c); o.NoBaggage == tt.baggage || o.AuthzInfoLogging != tt.authzInfo {
			t.Errorf("%v: baggage %v, info-level allows %v; want %v, %v", tt.env, !o.NoBaggage, o.AuthzInfoLogging, tt.baggage, tt.authzInfo)
		}
	}
}
