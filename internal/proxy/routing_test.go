package proxy_test

import (
	"bufio"
	"net/netip"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/dns"
	"github.com/ztunnel-go/ztunnel/internal/proxy"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// TestHostnameWorkloadResolvedOnDemand pins Rust resolve_workload_address and
// resolve_on_demand_dns: a service endpoint known by hostname only (a ServiceEntry with
// DNS resolution) is resolved through the node's resolver when a connection needs it,
// counted in istio_on_demand_dns_total with the source's labels and the hostname, and
// the answer is reused within its TTL.
func TestHostnameWorkloadResolvedOnDemand(t *testing.T) {
	ztest.NoLeaks(t)
	fake := ztest.ListenFakeDNS(t, "127.0.0.1:0", map[string][]string{"legacy.example.com.": {"127.0.11.5"}})
	resolver := dns.NewResolver(dns.Upstream{Servers: []netip.AddrPort{fake.Addr}, Timeout: 2 * time.Second, Attempts: 1}, &proxy.HostSockets{})
	b := newBed(t, func(o *proxy.Options) { o.Resolver = resolver })
	named := &workloadapi.Workload{Uid: "se//legacy", Name: "legacy-se", Namespace: "default", Hostname: "legacy.example.com",
		Services: map[string]*workloadapi.PortList{"default/legacy.example.com": {Ports: []*workloadapi.Port{{ServicePort: 80, TargetPort: 8080}}}}}
	svc := ztest.Service("default", "legacy", []string{"127.0.12.9"}, 80, 8080)
	svc.Hostname = "legacy.example.com"
	if errs := b.a.store.Apply(state.Update{Addresses: []*workloadapi.Address{ztest.AsAddress(svc), ztest.AsAddress(named)}}); len(errs) > 0 {
		t.Fatal(errs)
	}
	for range 2 {
		c, code := b.socks(t, sleepIP, "127.0.12.9:80")
		if code != 0 {
			t.Fatalf("SOCKS5 reply %d; node A log:\n%s", code, b.a.logs)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || !strings.HasPrefix(line, "127.0.11.5:8080 ") {
			t.Fatalf("answered %q, %v; want the app at the resolved 127.0.11.5:8080", line, err)
		}
	}
	if v := ztest.MetricValue(t, b.a.metrics, "istio_on_demand_dns_total",
		map[string]string{"hostname": "legacy.example.com", "source_workload": "sleep", "source_workload_namespace": "foo"}); v != 2 {
		t.Errorf("istio_on_demand_dns_total = %v, want 2 (one per connection)", v)
	}
	a := 0
	for _, q := range fake.Asked() {
		if q.Type == mdns.TypeA {
			a++
		}
	}
	if a != 1 {
		t.Errorf("the resolver asked A %d times for two connections within the TTL, want once", a)
	}
}

// TestUnknownSourceWaitsThenRefuses pins Rust wait_for_workload's deadline: a source that
// never arrives is refused once the wait is over (here a short one), logged as an early
// deny (no metric).
func TestUnknownSourceWaitsThenRefuses(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t, func(o *proxy.Options) { o.SourceWait = 200 * time.Millisecond })
	c, code := b.socks(t, netip.MustParseAddr("127.0.10.99"), "127.0.11.1:8080")
	if c != nil {
		c.Close()
	}
	if code == 0 {
		t.Fatal("an unknown source was carried")
	}
	if !b.a.logs.WaitFor("unknown source workload") {
		t.Errorf("no refusal logged:\n%s", b.a.logs)
	}
	if v := ztest.MetricValue(t, b.a.metrics, "istio_tcp_connections_opened_total", nil); v != 0 {
		t.Errorf("an early deny counted as opened (%v)", v)
	}
}
