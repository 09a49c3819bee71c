//go:build linux

package app_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// upstreamIP is kube-dns's place in the bed: node 1's bridge address, which every pod
// reaches and which the bed assigned. Pods name it in their resolv.conf (istio-cni's
// rules send their queries to ztunnel instead); ztunnel's own resolv.conf names it too.
const upstreamIP = "10.70.1.1"

// getentHost runs `getent hosts name` in the pod, as an app resolving a name would
// (glibc, the pod's resolv.conf with Kubernetes' search list and ndots:5), and returns
// the first address printed.
func getentHost(t *testing.T, p *ztest.BedPod, name string) string {
	t.Helper()
	out, err := p.Exec("getent", "hosts", name)
	if err != nil {
		t.Fatalf("getent hosts %s in %s: %v\n%s", name, p.Name, err, out)
	}
	return strings.Fields(out)[0]
}

// askFrom sends one query from inside the pod to its nameserver over network, as a
// resolver library would (the pod's rules redirect it to ztunnel on 15053).
func askFrom(t *testing.T, p *ztest.BedPod, network, name string, qtype uint16) *mdns.Msg {
	t.Helper()
	var c net.Conn
	err := p.Do(func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err = d.DialContext(context.Background(), network, upstreamIP+":53")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	m := new(mdns.Msg)
	m.SetQuestion(name, qtype)
	r, _, err := (&mdns.Client{Net: network, Timeout: 5 * time.Second}).ExchangeWithConn(m, &mdns.Conn{Conn: c})
	if err != nil {
		t.Fatalf("%s query for %s from %s: %v", network, name, p.Name, err)
	}
	return r
}

// testInPodDNS: with istio-cni's rules, DNS capture included, a pod's names resolve
// through ztunnel: mesh names from the mesh, others from upstream, over UDP and TCP.
func testInPodDNS(t *testing.T, c *cluster) {
	echoA, sleep := c.pods["echo-a"], c.pods["sleep"]
	t.Run("getent resolves mesh names through ztunnel", func(t *testing.T) {
		for _, name := range []string{"httpbin", "httpbin.default", "httpbin.default.svc.cluster.local"} {
			if got := getentHost(t, echoA, name); got != "10.96.0.20" {
				t.Errorf("getent hosts %s in default/echo-a = %s, want the VIP 10.96.0.20", name, got)
			}
		}
		if got := getentHost(t, sleep, "httpbin.default"); got != "10.96.0.20" {
			t.Errorf("getent hosts httpbin.default in foo/sleep = %s", got)
		}
		for _, a := range c.upstream.Asked() {
			if strings.Contains(a.Name, "httpbin") {
				t.Errorf("a mesh name reached the upstream: %+v", a)
			}
		}
	})
	t.Run("getent resolves other names from upstream, asked from the pod", func(t *testing.T) {
		if got := getentHost(t, echoA, "db.corp.example"); got != "10.70.2.11" {
			t.Errorf("getent hosts db.corp.example = %s, want the upstream's 10.70.2.11", got)
		}
		n := 0
		for _, a := range c.upstream.Asked() {
			if !strings.HasPrefix(a.Name, "db.corp.example.") {
				continue
			}
			if n++; a.Src.String() != echoA.IP {
				t.Errorf("upstream asked from %s, want echo-a's own address %s", a.Src, echoA.IP)
			}
		}
		if n == 0 {
			t.Error("the upstream was never asked")
		}
	})
	t.Run("TCP and UDP queries from a pod's resolver", func(t *testing.T) {
		for _, network := range []string{"tcp", "udp"} {
			r := askFrom(t, echoA, network, "httpbin.default.svc.cluster.local.", mdns.TypeA)
			if len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != "10.96.0.20" || !r.Authoritative {
				t.Errorf("%s: %v", network, r)
			}
		}
		if r := askFrom(t, echoA, "tcp", "db.corp.example.", mdns.TypeA); len(r.Answer) != 1 {
			t.Errorf("forwarded over TCP: %v", r)
		}
	})
	t.Run("istio_dns metrics carry the client's labels", func(t *testing.T) {
		s := scrape(t, c.nodes[1])
		for _, l := range []map[string]string{
			{"request_protocol": "tcp", "request_query_type": "a", "source_canonical_service": "echo", "source_canonical_revision": "v1"},
			{"request_protocol": "udp", "request_query_type": "aaaa", "source_canonical_service": "echo", "source_canonical_revision": "v1"},
			{"request_protocol": "udp", "request_query_type": "a", "source_canonical_service": "sleep", "source_canonical_revision": "v1"},
		} {
			if !answers(s, "istio_dns_requests_total", l) {
				t.Errorf("no istio_dns_requests_total%v", l)
			}
		}
		for _, m := range []string{"istio_dns_upstream_requests_total", "istio_dns_upstream_request_duration_seconds_bucket"} {
			if !answers(s, m, map[string]string{"request_protocol": "udp", "source_canonical_service": "echo"}) {
				t.Errorf("no %s for echo", m)
			}
		}
	})
	t.Run("a debug line per query", func(t *testing.T) {
		for _, want := range []string{
			"dns query src.addr=10.70.1.12:", // then the client's port
			"src.workload=echo-a src.namespace=default query=A domain=db.corp.example. result=forwarded endpoints=1 forwarded=true",
			"src.workload=echo-a src.namespace=default query=A domain=httpbin.default.svc.cluster.local. result=mesh endpoints=1 forwarded=false",
		} {
			if !c.nodes[1].logs.WaitFor(want) {
				t.Errorf("no log line with %q", want)
			}
		}
	})
	t.Run("/debug/dns shows each pod's recent queries", func(t *testing.T) {
		var dump map[string]struct {
			Workload string
			Queries  []struct{ Name, Type, Result, Matched string }
		}
		getJSON(t, c.nodes[1], "/debug/dns", &dump)
		q := dump["uid-echo-a"]
		var mesh, fwd bool
		for _, e := range q.Queries {
			mesh = mesh || (e.Result == "mesh" && e.Matched == "httpbin.default.svc.cluster.local")
			fwd = fwd || (e.Result == "forwarded" && e.Name == "db.corp.example.")
		}
		if q.Workload != "default/echo-a" || !mesh || !fwd {
			t.Errorf("/debug/dns for echo-a = %+v", q)
		}
	})
}
