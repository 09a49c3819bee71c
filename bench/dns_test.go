//go:build linux

package bench

import (
	"fmt"
	"strings"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// DNS metric names, in the report's order.
const (
	dnsQPS = "queries/s, 8 askers"
	dnsP50 = "query p50 (µs)"
	dnsP99 = "query p99 (µs)"
)

// dnsScenario is one way a pod's query is answered: straight from the upstream (a pod
// outside the mesh), or by its ztunnel, from the mesh or forwarded to that upstream.
type dnsScenario struct {
	name, clientNS, qname string
}

// upstreamName is the name only the upstream knows; meshName is the bench's service.
const upstreamName, meshName = "up.bench.example.", "echo.bench.svc.cluster.local."

// setupDNS serves kube-dns's part on node 1's bridge address (port 53) and names it in
// the nodes' resolv.conf, which `ip netns exec` gives the ztunnel binaries. It must run
// before the ztunnels start: they read resolv.conf once.
func (h *harness) setupDNS(t *testing.T, n1, n2 *ztest.BedNode, cp, cz *ztest.BedPod) {
	n1.ServeDNS(t, n1IP, map[string][]string{upstreamName: {n2IP}})
	n1.Resolv(n1IP)
	n2.Resolv(n1IP)
	h.dns = []dnsScenario{{"direct", cp.NS, upstreamName}, {"ztunnel, mesh name", cz.NS, meshName},
		{"ztunnel, forwarded", cz.NS, upstreamName}}
}

// dnsRound measures one DNS scenario once: latency one query at a time, then
// throughput from 8 askers for 2 s, every query to n1IP:53 (a mesh pod's is captured).
func (h *harness) dnsRound(t *testing.T, d dnsScenario) map[string]float64 {
	r, err := h.loadgenRun(scenario{clientNS: d.clientNS}, "-mode", "dns", "-addr", n1IP+":53", "-name", d.qname,
		"-n", "2000", "-c", "8", "-d", "2s")
	if err != nil || r["failed"] > 0 {
		t.Errorf("DNS %s: %v %v", d.name, err, r)
		return nil
	}
	return map[string]float64{dnsQPS: r["per_second"], dnsP50: r["p50_us"], dnsP99: r["p99_us"]}
}

// dnsReport renders the DNS medians with each row's ratio to the direct query.
func dnsReport(names []string, med map[string]map[string]float64) string {
	var b strings.Builder
	b.WriteString("\n## DNS\n\nA pod's A query over UDP to its nameserver (kube-dns's place, on node 1): straight to it from a pod outside the mesh, " +
		"and from a mesh pod, whose query istio-cni's rules send to its ztunnel, for a mesh name (answered from the state) and for a name " +
		"only the upstream knows (forwarded from the pod's namespace). Same upstream, same run, medians.\n\n")
	b.WriteString("| scenario | " + strings.Join([]string{dnsQPS, dnsP50, dnsP99}, " | ") + " | queries/s / direct | p50 / direct |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|\n")
	for _, n := range names {
		m := med[n]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", n, cell(m, dnsQPS), cell(m, dnsP50), cell(m, dnsP99),
			ratio(m, med["direct"], dnsQPS), ratio(m, med["direct"], dnsP50))
	}
	return b.String()
}
