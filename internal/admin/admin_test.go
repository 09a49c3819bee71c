package admin_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
	"istio.io/istio/istioctl/pkg/writer/ztunnel/configdump"

	"github.com/ztunnel-go/ztunnel/examples"
	"github.com/ztunnel-go/ztunnel/internal/admin"
	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/version"
	"github.com/ztunnel-go/ztunnel/internal/xds"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	srv    *admin.Server
	quit   atomic.Int32
	cfg    *config.Config
	store  *state.Store
	levels *logging.Levels
}

// newFixture is standalone mode on the embedded example, with a fixed version and
// machine so that the dumps are byte-for-byte reproducible.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	cfg, err := config.Load(config.Source{
		Env:        []string{"NODE_NAME=local", "ISTIO_META_ISTIO_VERSION=1.28.0"},
		FileExists: func(string) bool { return false },
		IPv6:       func() bool { return true },
		NumCPU:     2,
	})
	if err != nil {
		t.Fatal(err)
	}
	static, err := xds.ParseLocalConfig(examples.Standalone)
	if err != nil {
		t.Fatal(err)
	}
	store := state.NewStore()
	if err := static.Apply(store); err != nil {
		t.Fatal(err)
	}
	spec, _ := logging.ParseSpec("info")
	f := &fixture{cfg: cfg, store: store, levels: logging.NewLevels(spec)}
	f.srv = admin.New(admin.Deps{
		Config: cfg, State: store, Static: static, Levels: f.levels,
		Version:   version.Info{Version: "1.0.0", GitRevision: "abc123", GoVersion: "go1.26", BuildStatus: "Clean"},
		ProxyArgs: "proxy ztunnel", Shutdown: func() { f.quit.Add(1) },
	})
	return f
}

func (f *fixture) do(method, target string) (int, string, http.Header) {
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body), rec.Result().Header
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/admin -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from golden file; diff it after go test ./internal/admin -update\n%s", name, got)
	}
}

func TestConfigDumpCurrentLayout(t *testing.T) {
	ztest.NoLeaks(t)
	code, body, hdr := newFixture(t).do("GET", "/config_dump")
	if code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("%d %s", code, hdr.Get("Content-Type"))
	}
	golden(t, "config_dump.json", body)
}

func TestConfigDump118Layout(t *testing.T) {
	ztest.NoLeaks(t)
	code, body, _ := newFixture(t).do("GET", "/config_dump?layout=1.18")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	golden(t, "config_dump_1.18.json", body)

	var d map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	seed := []string{"certificates", "config", "local_node", "policies", "policies_by_namespace",
		"proxy_mode", "static_config", "version", "vips", "workload_to_vip", "workloads"}
	if got := keys(d); !reflect.DeepEqual(got, seed) {
		t.Errorf("top-level sections = %v, want the seed's %v", got, seed)
	}
	var vips, w2v map[string][][2]any
	json.Unmarshal(d["vips"], &vips)
	json.Unmarshal(d["workload_to_vip"], &w2v)
	wantVIPs := map[string][][2]any{"127.0.10.1:8000": {{"127.0.0.3", 8080.0}, {"127.0.0.4", 8080.0}}}
	if !reflect.DeepEqual(vips, wantVIPs) {
		t.Errorf("vips = %v, want %v", vips, wantVIPs)
	}
	wantW2V := map[string][][2]any{"127.0.0.3": {{"127.0.10.1:8000", 8080.0}}, "127.0.0.4": {{"127.0.10.1:8000", 8080.0}}}
	if !reflect.DeepEqual(w2v, wantW2V) {
		t.Errorf("workload_to_vip = %v, want %v", w2v, wantW2V)
	}
	var cfg map[string]json.RawMessage
	json.Unmarshal(d["config"], &cfg)
	seedConfig := []string{"admin_addr", "ca_address", "ca_root_cert", "cluster_id", "connection_window_size",
		"enable_original_source", "fake_ca", "frame_size", "inbound_addr", "inbound_plaintext_addr", "local_ip",
		"local_node", "num_worker_threads", "outbound_addr", "proxy_args", "proxy_metadata", "proxy_mode",
		"readiness_addr", "socks5_addr", "stats_addr", "termination_grace_period", "window_size",
		"xds_address", "xds_on_demand", "xds_root_cert"}
	if got := keys(cfg); !reflect.DeepEqual(got, seedConfig) {
		t.Errorf("config keys = %v\nwant the seed's %v", got, seedConfig)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestIstioctlParsesDump runs istioctl's own ztunnel-config parser and printers (the code
// behind `istioctl ztunnel-config all -f dump.json`) over our dump.
func TestIstioctlParsesDump(t *testing.T) {
	ztest.NoLeaks(t)
	_, body, _ := newFixture(t).do("GET", "/config_dump")
	var out bytes.Buffer
	cw := &configdump.ConfigWriter{Stdout: &out, FullDump: []byte(body)}
	if err := cw.Prime([]byte(body)); err != nil {
		t.Fatalf("istioctl cannot parse our dump: %v", err)
	}
	if err := cw.PrintFullSummary(true); err != nil {
		t.Fatalf("istioctl cannot print our dump: %v", err)
	}
	for _, want := range []string{"httpbin-v1", "127.0.0.3", "127.0.10.1", "2/2", "Deny", "Namespace"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("istioctl summary lacks %q:\n%s", want, out.String())
		}
	}
}

func TestUnknownLayout(t *testing.T) {
	ztest.NoLeaks(t)
	if code, _, _ := newFixture(t).do("GET", "/config_dump?layout=1.0"); code != 400 {
		t.Errorf("unknown layout = %d, want 400", code)
	}
}

func TestLogging(t *testing.T) {
	ztest.NoLeaks(t)
	f := newFixture(t)
	steps := []struct {
		method, target string
		code           int
		body           string
	}{
		{"GET", "/logging", 405, "usage: POST /logging"},
		{"POST", "/logging", 200, "current log level is info\n"},
		{"POST", "/logging?level=xds:debug,access:off", 200, "current log level is info,access=off,xds=debug\n"},
		{"POST", "/logging?level=warn", 200, "current log level is warn,access=off,xds=debug\n"},
		{"POST", "/logging?level=loud", 400, "invalid level"},
		{"POST", "/logging?reset", 200, "current log level is info\n"},
		{"POST", "/logging?reset&level=debug", 200, "current log level is debug\n"},
	}
	for _, s := range steps {
		code, body, _ := f.do(s.method, s.target)
		if code != s.code || !strings.Contains(body, s.body) {
			t.Errorf("%s %s = %d %q, want %d %q", s.method, s.target, code, body, s.code, s.body)
		}
	}
}

func TestQuitQuitQuit(t *testing.T) {
	ztest.NoLeaks(t)
	f := newFixture(t)
	if code, _, _ := f.do("GET", "/quitquitquit"); code != 405 || f.quit.Load() != 0 {
		t.Errorf("GET must not shut down: %d", code)
	}
	if code, body, _ := f.do("POST", "/quitquitquit"); code != 200 || body != "shutdown now\n" || f.quit.Load() != 1 {
		t.Errorf("POST = %d %q, shutdowns %d", code, body, f.quit.Load())
	}
}

func TestIndexAndPprof(t *testing.T) {
	ztest.NoLeaks(t)
	f := newFixture(t)
	code, body, hdr := f.do("GET", "/")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") ||
		!strings.Contains(body, `href="/config_dump"`) || !strings.Contains(body, `href="/debug/pprof/"`) {
		t.Errorf("index: %d %q", code, body)
	}
	if code, body, _ := f.do("GET", "/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile") {
		t.Errorf("pprof goroutine: %d", code)
	}
	if code, _, _ := f.do("GET", "/nope"); code != 404 {
		t.Errorf("unknown path = %d", code)
	}
}

// TestSeedPolicyIn118Layout loads the seed article's policy exactly as it prints it
// (including 1.18's leading empty clause) and checks the 1.18 dump reproduces the
// article's JSON.
func TestSeedPolicyIn118Layout(t *testing.T) {
	ztest.NoLeaks(t)
	const seed = `{"name":"httpbin","namespace":"default","scope":"Namespace","action":"Deny","groups":[[[{}],[{"namespaces":[{"Exact":"foo"}]}]]]}`
	static, err := xds.ParseLocalConfig([]byte(`policies:
- name: httpbin
  namespace: default
  scope: Namespace
  action: Deny
  rules: [[[{}], [{namespaces: [{Exact: foo}]}]]]
`))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	store := state.NewStore()
	if err := static.Apply(store); err != nil {
		t.Fatal(err)
	}
	f.srv = admin.New(admin.Deps{Config: f.cfg, State: store, Levels: f.levels})
	_, body, _ := f.do("GET", "/config_dump?layout=1.18")
	var d struct {
		Policies            map[string]json.RawMessage `json:"policies"`
		PoliciesByNamespace map[string][]string        `json:"policies_by_namespace"`
	}
	json.Unmarshal([]byte(body), &d)
	var got, want any
	json.Unmarshal(d.Policies["default/httpbin"], &got)
	json.Unmarshal([]byte(seed), &want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("1.18 policy\n got %s\nwant %s", d.Policies["default/httpbin"], seed)
	}
	if !reflect.DeepEqual(d.PoliciesByNamespace, map[string][]string{"default": {"default/httpbin"}}) {
		t.Errorf("policies_by_namespace = %v", d.PoliciesByNamespace)
	}
}
