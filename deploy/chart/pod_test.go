//go:build linux

package chart_test

import (
	"bufio"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// The chart's pod, started from our image exactly as the kubelet would start it (see
// bed.startZtunnel), on both nodes: it becomes ready on the rendered probe, takes the
// pods from istio-cni, carries sleep's connection to echo-b over HBONE (mutual TLS, the
// source address kept), and exits cleanly within terminationGracePeriodSeconds of a
// SIGTERM. Rendered with the defaults, and with every option that adds env.
func TestChartPod(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	cases := []struct {
		name, cpuLimit string
		args           []string
	}{
		{"defaults", "2", nil}, // no CPU limit: the kubelet gives the node's CPUs
		{"every option", "2", []string{"--set", "peerCaCrl.enabled=true", "--set", "logAsJson=true",
			"--set", "resources.limits.cpu=2", "--set", "env.ISTIO_META_DNS_CAPTURE=false",
			"--set", "meshConfig.defaultConfig.proxyMetadata.ISTIO_META_DNS_PROXY_ADDR=localhost:15054"}},
		// The root from a ClusterTrustBundle instead of the ConfigMap, at the same path.
		{"trust bundle", "2", []string{"--set", "env.ENABLE_CLUSTER_TRUST_BUNDLE_API=true"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := render(t, tc.args...)
			var running [3]*ztest.Running
			for i := 1; i <= 2; i++ {
				zt := b.pods[ztA(i)]
				running[i] = b.startZtunnel(t, spec, i, zt, tc.cpuLimit)
				waitReady(t, spec, b.nodes[i], zt, running[i])
			}
			server, client := askApp(t, b.pods["sleep"], b.pods["echo-b"].IP+":8080")
			if server != b.pods["echo-b"].IP+":8080" || !strings.HasPrefix(client, b.pods["sleep"].IP+":") {
				t.Errorf("echo-b saw %s from %s, want its own address from sleep's", server, client)
			}
			_, metrics, err := get(b.nodes[2], b.pods[ztA(2)].IP, 15020, "/metrics")
			if err != nil || !hasSeries(metrics, "istio_tcp_connections_opened_total",
				`reporter="destination"`, `source_workload="sleep"`, `connection_security_policy="mutual_tls"`) {
				t.Errorf("node 2's ztunnel reports no mutual-TLS connection from sleep (%v)", err)
			}
			grace := time.Duration(spec.TerminationGracePeriodSeconds) * time.Second
			for i := 1; i <= 2; i++ {
				running[i].Signal(syscall.SIGTERM)
			}
			for i := 1; i <= 2; i++ {
				exited, err := running[i].Wait(grace)
				if !exited || err != nil {
					t.Errorf("node %d's ztunnel: exited %v (%v) within the %v grace period:\n%s", i, exited, err, grace, running[i].Output())
				}
			}
			if t.Failed() {
				t.Logf("node 1's ztunnel:\n%s", running[1].Output())
			}
		})
	}
	// A value ztunnel rejects, set through the chart: the pod does not start, and says
	// which variable.
	t.Run("rejected value", func(t *testing.T) {
		spec := render(t, "--set", "env.ZTUNNEL_WORKER_THREADS=lots")
		r := b.startZtunnel(t, spec, 1, b.pods[ztA(1)], "2")
		exited, err := r.Wait(30 * time.Second)
		if !exited || err == nil || !strings.Contains(r.Output(), "ZTUNNEL_WORKER_THREADS") {
			t.Errorf("exited %v (%v), want a failure naming ZTUNNEL_WORKER_THREADS:\n%s", exited, err, r.Output())
		}
	})
}

func ztA(node int) string { return "zt-a-" + string(rune('0'+node)) }

// askApp connects from a pod to addr and returns the app's "<server> <client>" line.
func askApp(t *testing.T, from *ztest.BedPod, addr string) (server, client string) {
	t.Helper()
	c, err := from.Dial(addr)
	if err != nil {
		t.Fatalf("%s → %s: %v", from.Name, addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%s → %s: %v", from.Name, addr, err)
	}
	server, client, _ = strings.Cut(strings.TrimSpace(line), " ")
	return server, client
}

// hasSeries reports whether a Prometheus scrape has a sample of metric with every label.
func hasSeries(scrape, metric string, labels ...string) bool {
	for _, line := range strings.Split(scrape, "\n") {
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			return true
		}
	}
	return false
}

// sumSeries adds up every sample of metric in a scrape.
func sumSeries(scrape, metric string) float64 {
	var sum float64
	for _, line := range strings.Split(scrape, "\n") {
		if strings.HasPrefix(line, metric+"{") || strings.HasPrefix(line, metric+" ") {
			if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
				sum += v
			}
		}
	}
	return sum
}

func joinSorted(s []string) string {
	slices.Sort(s)
	return strings.Join(s, " ")
}
