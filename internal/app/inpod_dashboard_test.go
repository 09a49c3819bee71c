//go:build linux

package app_test

import (
	"regexp"
	"strings"
	"testing"
)

// dashboardQueries are the series the panels of Istio's ztunnel dashboard
// (manifests/addons/dashboards/lib/queries.libsonnet) and the TCP panels of its workload
// dashboard read, each as the query, the metric, the labels its matchers and `by` clause
// need, and the node whose scrape must answer it (1: the source side, 2: the destination).
// The pod, container and app labels those queries also use are added by Prometheus's
// scrape config, not by ztunnel, so they are not checked here.
var dashboardQueries = []struct {
	query  string
	metric string
	labels map[string]string // label → regexp its value must match
	node   int
}{
	{`sum(istio_build{component="ztunnel"}) by (tag)`, "istio_build", map[string]string{"component": "ztunnel", "tag": ".+"}, 1},
	{`sum(go_memstats_stack_inuse_bytes) by (pod)`, "go_memstats_stack_inuse_bytes", nil, 1},
	{`sum(go_memstats_heap_inuse_bytes) by (pod)`, "go_memstats_heap_inuse_bytes", nil, 1},
	{`sum(go_memstats_heap_alloc_bytes) by (pod)`, "go_memstats_heap_alloc_bytes", nil, 1},
	{`sum(rate(go_memstats_alloc_bytes_total[$__rate_interval])) by (pod)`, "go_memstats_alloc_bytes_total", nil, 1},
	{`sum(rate(go_memstats_mallocs_total[$__rate_interval])) by (pod)`, "go_memstats_mallocs_total", nil, 1},
	{`sum(go_goroutines) by (pod)`, "go_goroutines", nil, 1},
	{`sum(rate(istio_tcp_connections_opened_total[$__rate_interval])) by (pod)`, "istio_tcp_connections_opened_total", nil, 1},
	{`-sum(rate(istio_tcp_connections_closed_total[$__rate_interval])) by (pod)`, "istio_tcp_connections_closed_total", nil, 1},
	{`sum(rate(istio_tcp_sent_bytes_total[$__rate_interval])) by (pod)`, "istio_tcp_sent_bytes_total", nil, 2},
	{`sum(rate(istio_tcp_received_bytes_total[$__rate_interval])) by (pod)`, "istio_tcp_received_bytes_total", nil, 2},
	{`sum(rate(istio_dns_requests_total[$__rate_interval])) by (pod)`, "istio_dns_requests_total", nil, 1},
	{`sum(workload_manager_active_proxy_count) by (pod)`, "workload_manager_active_proxy_count", nil, 1},
	{`sum(workload_manager_pending_proxy_count) by (pod)`, "workload_manager_pending_proxy_count", nil, 1},
	{`sum(rate(istio_tcp_received_bytes_total{reporter=~"source|waypoint"}[$__rate_interval])) by (destination_workload, destination_workload_namespace, destination_service)`,
		"istio_tcp_received_bytes_total", map[string]string{"reporter": "source|waypoint", "destination_workload": "echo",
			"destination_workload_namespace": "default", "destination_service": `echo\.default\.svc\.cluster\.local`}, 1},
	{`sum(rate(istio_tcp_sent_bytes_total{reporter=~"source|waypoint"}[$__rate_interval])) by (destination_workload, destination_workload_namespace, destination_service)`,
		"istio_tcp_sent_bytes_total", map[string]string{"reporter": "source|waypoint", "destination_workload": "echo",
			"destination_workload_namespace": "default", "destination_service": `echo\.default\.svc\.cluster\.local`}, 1},
	// The workload dashboard's inbound TCP panels.
	{`sum(rate(istio_tcp_received_bytes_total{reporter=~"destination", connection_security_policy="mutual_tls", destination_workload_namespace=~"default", destination_workload=~"echo"}[1m])) by (source_workload, source_workload_namespace)`,
		"istio_tcp_received_bytes_total", map[string]string{"reporter": "destination", "connection_security_policy": "mutual_tls",
			"destination_workload": "echo", "destination_workload_namespace": "default", "source_workload": "sleep", "source_workload_namespace": "foo"}, 2},
	{`sum(rate(istio_tcp_connections_opened_total{reporter=~"destination", destination_workload=~"echo"}[1m])) by (source_workload, source_workload_namespace)`,
		"istio_tcp_connections_opened_total", map[string]string{"reporter": "destination", "destination_workload": "echo",
			"source_workload": "sleep", "source_workload_namespace": "foo"}, 2},
}

var seriesLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? `)
var labelPair = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// answers reports whether some series of metric in the scrape satisfies every label.
func answers(scrape, metric string, want map[string]string) bool {
	for _, line := range strings.Split(scrape, "\n") {
		m := seriesLine.FindStringSubmatch(line)
		if m == nil || m[1] != metric {
			continue
		}
		got := map[string]string{}
		for _, p := range labelPair.FindAllStringSubmatch(m[2], -1) {
			got[p[1]] = p[2]
		}
		ok := true
		for k, re := range want {
			if !regexp.MustCompile("^(?:" + re + ")$").MatchString(got[k]) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// checkDashboard asserts that every dashboard query finds its series in the scrapes.
func checkDashboard(t *testing.T, scrapes [3]string) {
	t.Helper()
	for _, q := range dashboardQueries {
		if !answers(scrapes[q.node], q.metric, q.labels) {
			t.Errorf("node %d's scrape does not answer %s", q.node, q.query)
		}
	}
}
