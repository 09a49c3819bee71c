package app

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/proxy"
	"github.com/ztunnel-go/ztunnel/internal/xds"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var anyPort = netip.MustParseAddrPort("127.0.0.1:0")

// newTestApp is a standalone ztunnel on OS-chosen loopback ports.
func newTestApp(t *testing.T, env ...string) *App {
	t.Helper()
	cfg, err := config.Load(config.Source{Env: env, FileExists: func(string) bool { return false }, IPv6: func() bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addrs.Admin = []netip.AddrPort{anyPort}
	cfg.Addrs.Stats, cfg.Addrs.Readiness = anyPort, anyPort
	cfg.Addrs.DNS, cfg.Addrs.DNSOptional = []netip.AddrPort{anyPort}, nil
	cfg.DNS.ResolvConf = testResolvConf(t, "127.0.0.1")
	log, levels, _ := logging.New(io.Discard, "plain", "info")
	a := New(cfg, log, levels)
	a.listen = proxy.Listen{Outbound: []netip.AddrPort{anyPort}, Inbound: []netip.AddrPort{anyPort},
		InboundPlaintext: []netip.AddrPort{anyPort}, Socks5: []netip.AddrPort{anyPort}, HBONEPort: 15008}
	return a
}

// testResolvConf writes a resolv.conf naming nameserver, as a Kubernetes pod's would.
func testResolvConf(t *testing.T, nameserver string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	conf := "nameserver " + nameserver + "\nsearch istio-system.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// start runs the app and returns a function that waits for Run's result.
func start(t *testing.T, a *App) func() error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- a.Run(context.Background()) }()
	select {
	case <-a.Started():
	case err := <-errc:
		t.Fatalf("Run failed at start: %v", err)
	}
	return func() error { return <-errc }
}

func get(t *testing.T, addr net.Addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr.String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestServesAndStopsCleanly(t *testing.T) {
	ztest.NoLeaks(t)
	a := newTestApp(t)
	wait := start(t, a)
	b := a.Addrs()
	// Started means bound; each server turns ready as it sees the state synced, a moment
	// later (the DNS proxy's task is done by its own goroutine).
	ztest.Eventually(t, "readiness 200 ready", func() bool {
		code, body := get(t, b.Readiness[0], "/healthz/ready")
		return code == 200 && body == "ready\n"
	})
	if _, body := get(t, b.Stats[0], "/metrics"); !strings.Contains(body, `istio_build{component="ztunnel",tag="unknown"} 1`) {
		t.Errorf("metrics lack istio_build:\n%s", body)
	}
	_, body := get(t, b.Admin[0], "/config_dump")
	var d struct{ Workloads, Services, Policies []any }
	if err := json.Unmarshal([]byte(body), &d); err != nil || len(d.Workloads) != 5 || len(d.Services) != 1 || len(d.Policies) != 1 {
		t.Errorf("config_dump: %v %+v", err, d)
	}
	resp, err := http.Post("http://"+b.Admin[0].String()+"/quitquitquit", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := wait(); err != nil {
		t.Errorf("Run = %v, want nil after /quitquitquit", err)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestNotReadyWhileDraining(t *testing.T) {
	ztest.NoLeaks(t)
	a := newTestApp(t)
	wait := start(t, a)
	release, _ := a.drain.Hold() // a connection in flight
	a.Shutdown()
	<-a.drain.Draining()
	code, body := get(t, a.Addrs().Readiness[0], "/healthz/ready")
	if code != 500 || !strings.Contains(body, "shutdown") {
		t.Errorf("readiness while draining = %d %q, want 500 naming shutdown", code, body)
	}
	release()
	if err := wait(); err != nil {
		t.Error(err)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestDrainDeadlineEndsShutdown(t *testing.T) {
	ztest.NoLeaks(t)
	a := newTestApp(t, "CONNECTION_TERMINATION_DEADLINE=50ms")
	wait := start(t, a)
	a.drain.Hold() // never released
	a.Shutdown()
	if err := wait(); err != nil {
		t.Error(err)
	}
}

func TestPortInUseNamesTheAddress(t *testing.T) {
	ztest.NoLeaks(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	a := newTestApp(t)
	a.cfg.Addrs.Stats = netip.MustParseAddrPort(taken.Addr().String())
	err = a.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), taken.Addr().String()) || !strings.Contains(err.Error(), "stats") {
		t.Errorf("Run = %v, want an error naming %s", err, taken.Addr())
	}
}

func TestBadStaticConfigFailsStart(t *testing.T) {
	ztest.NoLeaks(t)
	a := newTestApp(t, "LOCAL_XDS=workloads: [{namespace: a, workloadIps: [300.1.1.1]}]")
	err := a.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "LOCAL_XDS") || !strings.Contains(err.Error(), "workloads[0].workloadIps[0]") {
		t.Errorf("Run = %v", err)
	}
}

func TestStateManagerPendingWhileIstiodUnreachable(t *testing.T) {
	ztest.NoLeaks(t)
	a := newTestApp(t, "XDS_ADDRESS=http://127.0.0.1:1", "FAKE_CA=true", "INPOD_ENABLED=false")
	wait := start(t, a)
	code, body := get(t, a.Addrs().Readiness[0], "/healthz/ready")
	if code != 500 || body != "not ready, pending: dns proxy, proxy, state manager\n" {
		t.Errorf("readiness = %d %q", code, body)
	}
	a.Shutdown()
	if err := wait(); err != nil {
		t.Error(err)
	}
	http.DefaultClient.CloseIdleConnections()
}

// TestXDSSyncMakesReady: ztunnel pointed at a (fake) istiod becomes ready once the first
// answers are applied, and shows what istiod sent.
func TestXDSSyncMakesReady(t *testing.T) {
	ztest.NoLeaks(t)
	fake := ztest.NewFakeXDS(t, false)
	fake.Set(xds.AddressType, "Kubernetes//Pod/default/from-istiod", ztest.AsAddress(ztest.Workload("default", "from-istiod", "10.1.2.3")))
	a := newTestApp(t, "XDS_ADDRESS="+fake.Address, "FAKE_CA=true", "AUTH_TOKEN=token", "INPOD_ENABLED=false")
	wait := start(t, a)
	for range 500 { // bounded wait for the sync
		if code, _ := get(t, a.Addrs().Readiness[0], "/healthz/ready"); code == 200 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code, body := get(t, a.Addrs().Readiness[0], "/healthz/ready"); code != 200 {
		t.Fatalf("readiness = %d %q", code, body)
	}
	if _, body := get(t, a.Addrs().Admin[0], "/config_dump"); !strings.Contains(body, "from-istiod") {
		t.Error("config_dump lacks the workload istiod sent")
	}
	if _, body := get(t, a.Addrs().Stats[0], "/metrics"); !strings.Contains(body, `istio_xds_message_total{url="type.googleapis.com/istio.workload.Address"}`) {
		t.Error("xDS metrics missing")
	}
	a.Shutdown()
	if err := wait(); err != nil {
		t.Error(err)
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestUnreadableXDSRootFailsStart(t *testing.T) {
	ztest.NoLeaks(t)
	a := newTestApp(t, "XDS_ADDRESS=istiod.example:15012", "FAKE_CA=true", "XDS_ROOT_CA=/nonexistent/root.pem")
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "XDS_ROOT_CA") {
		t.Errorf("Run = %v", err)
	}
}

func TestContextCancelStops(t *testing.T) {
	ztest.NoLeaks(t)
	a := newTestApp(t)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- a.Run(ctx) }()
	<-a.Started()
	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(30 * time.Second): // a hang bound, not a timing assertion
		t.Fatal("Run did not return after cancel")
	}
}

func TestUnreadableCARootFailsStart(t *testing.T) {
	ztest.NoLeaks(t)
	a := newTestApp(t, "XDS_ADDRESS=istiod.example:15012", "CA_ROOT_CA=/nonexistent/root.pem")
	err := a.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "CA_ROOT_CA") || !strings.Contains(err.Error(), "/nonexistent/root.pem") {
		t.Errorf("Run = %v", err)
	}
}

// TestStandaloneIdentitiesAvailable: the built-in CA issues the example's identities.
func TestStandaloneIdentitiesAvailable(t *testing.T) {
	ztest.NoLeaks(t)
	a := newTestApp(t)
	wait := start(t, a)
	want := map[string]string{"spiffe://cluster.local/ns/foo/sa/sleep": "Available",
		"spiffe://cluster.local/ns/default/sa/httpbin": "Available", "spiffe://cluster.local/ns/default/sa/curl": "Available"}
	var got map[string]string
	for range 200 { // prefetch runs in the background; bounded wait
		if got = certStates(t, a.Addrs().Admin[0]); reflect.DeepEqual(got, want) {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("certificates = %v, want the three HBONE identities Available (legacy-tcp is plain TCP)", got)
	}
	a.Shutdown()
	if err := wait(); err != nil {
		t.Error(err)
	}
	http.DefaultClient.CloseIdleConnections()
}

func certStates(t *testing.T, admin net.Addr) map[string]string {
	t.Helper()
	_, body := get(t, admin, "/config_dump")
	var d struct {
		Certificates []struct{ Identity, State string }
	}
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range d.Certificates {
		out[c.Identity] = c.State
	}
	return out
}

// TestNodeModeDNS: in node mode one DNS server answers for the workload owning the
// query's source address (the standalone example's foo/sleep at 127.0.0.2), under the
// readiness task "dns proxy"; an address that is no workload gets SERVFAIL.
func TestNodeModeDNS(t *testing.T) {
	ztest.NoLeaks(t)
	a := newTestApp(t)
	wait := start(t, a)
	b := a.Addrs()
	ztest.Eventually(t, "ready", func() bool { code, _ := get(t, b.Readiness[0], "/healthz/ready"); return code == 200 })
	ask := func(src string) *mdns.Msg {
		m := new(mdns.Msg)
		m.SetQuestion("httpbin.default.", mdns.TypeA)
		c := &mdns.Client{Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
		r, _, err := c.Exchange(m, b.DNS[0].String())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := ask("127.0.0.2"); len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != "127.0.10.1" {
		t.Errorf("foo/sleep asking httpbin.default: %v", r)
	}
	if r := ask("127.0.0.9"); r.Rcode != mdns.RcodeServerFailure {
		t.Errorf("a source that is no workload: rcode %d", r.Rcode)
	}
	if _, body := get(t, b.Stats[0], "/metrics"); !strings.Contains(body, `istio_dns_requests_total{request_protocol="udp",request_query_type="a",source_canonical_revision="latest",source_canonical_service="sleep"} 1`) {
		t.Errorf("metrics lack the query:\n%s", grepLines(body, "dns"))
	}
	a.Shutdown()
	if err := wait(); err != nil {
		t.Fatal(err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDNSPortInUseFailsStart: the DNS proxy binds at start, like every listener.
func TestDNSPortInUseFailsStart(t *testing.T) {
	ztest.NoLeaks(t)
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	a := newTestApp(t)
	a.cfg.Addrs.DNS = []netip.AddrPort{netip.MustParseAddrPort(taken.LocalAddr().String())}
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), taken.LocalAddr().String()) {
		t.Errorf("Run = %v; want an error naming %s", err, taken.LocalAddr())
	}
}

// TestMissingResolvConfFailsStart names the file and how to turn the proxy off.
func TestMissingResolvConfFailsStart(t *testing.T) {
	ztest.NoLeaks(t)
	a := newTestApp(t)
	a.cfg.DNS.ResolvConf = filepath.Join(t.TempDir(), "none")
	if err := a.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "none") || !strings.Contains(err.Error(), "ISTIO_META_DNS_CAPTURE") {
		t.Errorf("Run = %v", err)
	}
}

// CRL_PATH naming a file that does not parse: ztunnel starts, says why naming the
// variable, counts it, and shows the policy in the dump; the CRL is taken once it is fixed.
func TestBadCRLPathWarnedAndCounted(t *testing.T) {
	ztest.NoLeaks(t)
	path := filepath.Join(t.TempDir(), "ca-crl.pem")
	if err := os.WriteFile(path, []byte("-----BEGIN X509 CRL-----\ngarbage\n-----END X509 CRL-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := newTestApp(t, "CRL_PATH="+path)
	logs := &ztest.LogBuffer{}
	a.log, _, _ = logging.New(logs, "plain", "info")
	wait := start(t, a)
	defer func() {
		a.Shutdown()
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	}()
	if !strings.Contains(logs.String(), "CRL not loaded") || !strings.Contains(logs.String(), "CRL_PATH "+path) {
		t.Errorf("no warning naming CRL_PATH:\n%s", logs.String())
	}
	if v := ztest.MetricValue(t, a.registry, "istio_crl_reload_failures_total", nil); v != 1 {
		t.Errorf("istio_crl_reload_failures_total = %v, want 1", v)
	}
	if a.tls.Revoked == nil {
		t.Error("the proxies' TLS policy has no CRL check")
	}
}
