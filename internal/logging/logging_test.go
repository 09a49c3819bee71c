package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func fixedLogger(t *testing.T, format, spec string) (*slog.Logger, *Levels, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	l, levels, err := New(&buf, format, spec)
	if err != nil {
		t.Fatal(err)
	}
	return l, levels, &buf
}

// rustTime is Rust ztunnel's timestamp: RFC 3339, UTC, microseconds.
var rustTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)

func TestPlainFormatLikeRust(t *testing.T) {
	ztest.NoLeaks(t)
	l, _, buf := fixedLogger(t, "plain", "info")
	in := Span(Scoped(l, "inbound"), "inbound", "id", "380b5fe1", "peer_ip", "10.244.2.12",
		"peer_id", "spiffe://cluster.local/ns/foo/sa/sleep")
	in.Info("RBAC rejected", "conn", "10.244.2.12->10.244.1.5:80", "error", "denied by policy")
	want := `  INFO inbound{id=380b5fe1 peer_ip=10.244.2.12 peer_id=spiffe://cluster.local/ns/foo/sa/sleep}: inbound: RBAC rejected conn=10.244.2.12->10.244.1.5:80 error="denied by policy"` + "\n"
	ts, rest := buf.String()[:27], buf.String()[27:]
	if !rustTime.MatchString(ts) || rest != want {
		t.Errorf("got  %q\nwant <time>%q", buf.String(), want)
	}
}

func TestJSONFormat(t *testing.T) {
	ztest.NoLeaks(t)
	l, _, buf := fixedLogger(t, "json", "info")
	Scoped(l, "access").WithGroup("src").Info("connection complete", "addr", "10.0.0.1:4000", "bytes", 12)
	var got map[string]any
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("not JSON: %q: %v", buf, err)
	}
	if !rustTime.MatchString(got["time"].(string)) {
		t.Errorf("time = %v", got["time"])
	}
	want := map[string]any{"level": "info", "scope": "access",
		"message": "connection complete", "src.addr": "10.0.0.1:4000", "src.bytes": float64(12)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (line %s)", k, got[k], v, buf)
		}
	}
}

func TestLevelsPerComponentAtRunTime(t *testing.T) {
	ztest.NoLeaks(t)
	l, levels, buf := fixedLogger(t, "plain", "warn,xds=debug")
	xds, proxy := Scoped(l, "xds"), Scoped(l, "proxy")
	xds.Debug("xds debug")
	proxy.Info("proxy info")
	if !strings.Contains(buf.String(), "xds debug") || strings.Contains(buf.String(), "proxy info") {
		t.Fatalf("start spec not applied: %q", buf)
	}
	if err := levels.Apply("proxy:info"); err != nil {
		t.Fatal(err)
	}
	proxy.Info("proxy info 2")
	if !strings.Contains(buf.String(), "proxy info 2") {
		t.Errorf("runtime change not applied: %q", buf)
	}
	if got := levels.Current().String(); got != "warn,proxy=info,xds=debug" {
		t.Errorf("current = %q", got)
	}
	levels.Reset()
	if got := levels.Current().String(); got != "warn,xds=debug" {
		t.Errorf("after reset = %q", got)
	}
}

func TestParseSpec(t *testing.T) {
	ztest.NoLeaks(t)
	tests := []struct {
		in, want string
		bad      bool
	}{
		{in: "info", want: "info"},
		{in: "debug,xds=trace", want: "debug,xds=trace"},
		{in: "xds:debug", want: "info,xds=debug"},
		{in: "hickory_server::server=off,info", want: "info,hickory_server=off,server=off"},
		{in: "ztunnel::proxy::inbound=debug", want: "info,inbound=debug,proxy=debug"},
		{in: "ztunnel=warn", want: "info,ztunnel=warn"},
		{in: "loud", bad: true},
		{in: "=debug", bad: true},
		{in: "xds=verbose", bad: true},
	}
	for _, tt := range tests {
		s, err := ParseSpec(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseSpec(%q): want error", tt.in)
			}
			continue
		}
		if err != nil || s.String() != tt.want {
			t.Errorf("ParseSpec(%q) = %q, %v; want %q", tt.in, s, err, tt.want)
		}
	}
}

// The throttle writes Burst lines of a kind per second, counts the rest, and reports
// them on the next line written; kinds do not share a budget.
func TestThrottle(t *testing.T) {
	th := NewThrottle(2)
	t0 := time.Unix(1000, 0)
	steps := []struct {
		kind       string
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{"a", 0, true, 0},
		{"a", 100 * time.Millisecond, true, 0},
		{"a", 200 * time.Millisecond, false, 0},
		{"b", 300 * time.Millisecond, true, 0}, // another kind has its own budget
		{"a", 900 * time.Millisecond, false, 0},
		{"a", 1000 * time.Millisecond, true, 2}, // a new second: the two left out are reported
		{"a", 1100 * time.Millisecond, true, 0},
		{"a", 5 * time.Second, true, 0},
	}
	for i, s := range steps {
		ok, n := th.allow(s.kind, t0.Add(s.at))
		if ok != s.ok || n != s.suppressed {
			t.Errorf("step %d (%s at %v): allowed %v, suppressed %d; want %v, %d", i, s.kind, s.at, ok, n, s.ok, s.suppressed)
		}
	}
}

// Log adds suppressed=N to the line that follows suppressed ones.
func TestThrottleLog(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil))
	th := NewThrottle(1)
	for range 3 {
		th.Log(l, slog.LevelWarn, "k", "noisy")
	}
	if got := strings.Count(buf.String(), "noisy"); got != 1 {
		t.Errorf("%d lines in the first second, want 1:\n%s", got, buf.String())
	}
	th.kinds["k"].window = th.kinds["k"].window.Add(-time.Second) // the next second
	th.Log(l, slog.LevelWarn, "k", "noisy")
	if !strings.Contains(buf.String(), "suppressed=2") {
		t.Errorf("no suppressed=2 on the next line:\n%s", buf.String())
	}
}
