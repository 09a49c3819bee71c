package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/proxy"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// labelsOf is the complete label set of the one series of name with reporter.
func labelsOf(t *testing.T, reg *prometheus.Registry, name, reporter string) map[string]string {
	t.Helper()
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.Metric {
			if mf.GetName() == name && ztest.HasLabels(m, map[string]string{"reporter": reporter}) {
				out := map[string]string{}
				for _, l := range m.Label {
					out[l.GetName()] = l.GetValue()
				}
				return out
			}
		}
	}
	t.Fatalf("no %s{reporter=%q}", name, reporter)
	return nil
}

func TestTrafficMetricsBothReporters(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	c, code := b.socks(t, sleepIP, "echo.default.svc.cluster.local:80")
	if code != 0 {
		t.Fatalf("SOCKS5 %d", code)
	}
	line := make([]byte, 0, 64) // the whoami line, then our bytes come back
	r := io.TeeReader(c, bytes.NewBuffer(line))
	payload := bytes.Repeat([]byte("z"), 12345)
	c.Write(payload)
	c.CloseWrite()
	got, _ := io.ReadAll(r)
	c.Close()
	want := map[string]string{
		"source_workload": "sleep", "source_canonical_service": "sleep", "source_canonical_revision": "v1",
		"source_workload_namespace": "foo", "source_principal": "spiffe://cluster.local/ns/foo/sa/sleep",
		"source_app": "sleep", "source_version": "v1", "source_cluster": "Kubernetes",
		"destination_service": "echo.default.svc.cluster.local", "destination_service_namespace": "default",
		"destination_service_name": "echo", "destination_workload": "echo", "destination_canonical_service": "echo",
		"destination_canonical_revision": "v2", "destination_workload_namespace": "default",
		"destination_principal": "spiffe://cluster.local/ns/default/sa/echo", "destination_app": "echo",
		"destination_version": "v2", "destination_cluster": "Kubernetes", "request_protocol": "tcp",
		"response_flags": "-", "connection_security_policy": "mutual_tls",
		"source_region": "unknown", "source_zone": "unknown", "destination_region": "unknown", "destination_zone": "unknown",
	}
	for _, tc := range []struct {
		reporter string
		reg      *prometheus.Registry
	}{{"source", b.a.metrics}, {"destination", b.b.metrics}} {
		ztest.Eventually(t, tc.reporter+" close", func() bool {
			return ztest.MetricValue(t, tc.reg, "istio_tcp_connections_closed_total", map[string]string{"reporter": tc.reporter}) == 1
		})
		labels := labelsOf(t, tc.reg, "istio_tcp_received_bytes_total", tc.reporter)
		for k, v := range want {
			if labels[k] != v {
				t.Errorf("%s: %s=%q, want %q", tc.reporter, k, labels[k], v)
			}
		}
		if len(labels) != len(want)+1 {
			t.Errorf("%s: %d labels, want %d", tc.reporter, len(labels), len(want)+1)
		}
		sel := map[string]string{"reporter": tc.reporter}
		if v := ztest.MetricValue(t, tc.reg, "istio_tcp_received_bytes_total", sel); v != 12345 {
			t.Errorf("%s received (client→server) = %v, want 12345", tc.reporter, v)
		}
		if v := ztest.MetricValue(t, tc.reg, "istio_tcp_sent_bytes_total", sel); v != float64(len(got)) {
			t.Errorf("%s sent (server→client) = %v, want %d", tc.reporter, v, len(got))
		}
		if v := ztest.MetricValue(t, tc.reg, "istio_tcp_connections_opened_total", sel); v != 1 {
			t.Errorf("%s opened = %v", tc.reporter, v)
		}
		if v := ztest.MetricValue(t, tc.reg, "istio_tcp_sockets_open", sel); v != 0 {
			t.Errorf("%s sockets open = %v after close", tc.reporter, v)
		}
	}
	// One access-log line per side, with its fields in Rust ztunnel's order.
	checkAccessLine(t, b.b.logs.String(), "inbound", []string{"src.addr", "src.workload", "src.namespace", "src.identity", "src.cluster",
		"dst.addr", "dst.hbone_addr", "dst.service", "dst.workload", "dst.namespace", "dst.identity", "dst.cluster", "direction",
		"bytes_sent", "bytes_recv", "duration"}, map[string]string{"src.workload": "sleep", "src.namespace": "foo",
		"src.identity": "spiffe://cluster.local/ns/foo/sa/sleep", "dst.service": "echo.default.svc.cluster.local",
		"dst.namespace": "default", "dst.identity": "spiffe://cluster.local/ns/default/sa/echo", "direction": "inbound",
		"bytes_sent": "12345"})
	checkAccessLine(t, b.a.logs.String(), "outbound", nil, map[string]string{"src.workload": "sleep", "direction": "outbound",
		"bytes_sent": "12345", "dst.service": "echo.default.svc.cluster.local"})
}

var kv = regexp.MustCompile(`([a-z_.]+)=("(?:[^"\\]|\\.)*"|\S+)`)

func checkAccessLine(t *testing.T, logs, direction string, order []string, want map[string]string) {
	t.Helper()
	var line string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "access: connection complete") && strings.Contains(l, "direction="+direction) {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no %s access line in:\n%s", direction, logs)
	}
	var keys []string
	got := map[string]string{}
	for _, m := range kv.FindAllStringSubmatch(line[strings.Index(line, "connection complete"):], -1) {
		keys = append(keys, m[1])
		got[m[1]] = strings.Trim(m[2], `"`)
	}
	if order != nil && strings.Join(keys, " ") != strings.Join(order, " ") {
		t.Errorf("%s access fields\n got %v\nwant %v", direction, keys, order)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s access %s=%q, want %q (line %s)", direction, k, got[k], v, line)
		}
	}
	if !strings.HasSuffix(got["duration"], "ms") {
		t.Errorf("duration %q", got["duration"])
	}
}

// TestRefusedConnectionCountedWithFlag pins Rust ConnectionResult::record_internal: a
// connection refused once routed (here by policy) counts as opened, then closed and
// failed with its flag, on both sides.
func TestRefusedConnectionCountedWithFlag(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	b.b.apply(t, ztest.DenyFromNamespace("default", "deny-foo", "foo"))
	c, _ := b.socks(t, sleepIP, "127.0.11.1:9000")
	c.Close()
	ztest.Eventually(t, "the destination's DENY count", func() bool {
		return ztest.MetricValue(t, b.b.metrics, "istio_tcp_connections_failed_total", map[string]string{"reporter": "destination", "response_flags": "DENY"}) == 1
	})
	if v := ztest.MetricValue(t, b.a.metrics, "istio_tcp_connections_failed_total", map[string]string{"reporter": "source", "response_flags": "DENY"}); v != 1 {
		t.Errorf("source failed{DENY} = %v, want 1", v)
	}
	for _, m := range []struct {
		reg      *prometheus.Registry
		reporter string
	}{{b.a.metrics, "source"}, {b.b.metrics, "destination"}} {
		if v := ztest.MetricValue(t, m.reg, "istio_tcp_connections_opened_total", map[string]string{"reporter": m.reporter, "response_flags": "-"}); v != 1 {
			t.Errorf("%s opened = %v, want 1", m.reporter, v)
		}
		if v := ztest.MetricValue(t, m.reg, "istio_tcp_connections_closed_total", map[string]string{"reporter": m.reporter, "response_flags": "DENY"}); v != 1 {
			t.Errorf("%s closed{DENY} = %v, want 1", m.reporter, v)
		}
	}
	if !b.b.logs.WaitFor("access: connection failed") {
		t.Error("no access-log line for the refused connection")
	}
}

// TestBytesCountedWhileTheConnectionLives: a long connection shows progress on the
// dashboards, not one jump when it ends.
func TestBytesCountedWhileTheConnectionLives(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	c, code := b.socks(t, sleepIP, "echo.default.svc.cluster.local:80")
	if code != 0 {
		t.Fatalf("SOCKS5 %d", code)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	br.ReadString('\n') // the whoami line
	payload := bytes.Repeat([]byte("p"), 5000)
	c.Write(payload)
	io.ReadFull(br, make([]byte, len(payload)))
	for _, side := range []struct {
		reporter string
		reg      *prometheus.Registry
	}{{"source", b.a.metrics}, {"destination", b.b.metrics}} {
		sel := map[string]string{"reporter": side.reporter}
		ztest.Eventually(t, side.reporter+" bytes of an open connection", func() bool {
			return ztest.MetricValue(t, side.reg, "istio_tcp_received_bytes_total", sel) == 5000
		})
		if v := ztest.MetricValue(t, side.reg, "istio_tcp_sockets_open", sel); v != 1 {
			t.Errorf("%s sockets open = %v while the connection lives, want 1", side.reporter, v)
		}
		if v := ztest.MetricValue(t, side.reg, "istio_tcp_connections_closed_total", sel); v != 0 {
			t.Errorf("%s closed = %v before the close", side.reporter, v)
		}
	}
}

// The CONNECT's 200 describes the destination in a baggage header (Rust's
// build_response with ENABLE_RESPONSE_BAGGAGE), and not with it off.
func TestResponseBaggage(t *testing.T) {
	ztest.NoLeaks(t)
	for _, tc := range []struct {
		name string
		off  bool
		want string
	}{
		{"on", false, "k8s.cluster.name=Kubernetes,k8s.namespace.name=default,k8s.deployment.name=echo,service.name=echo,service.version=v2"},
		{"off", true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) { // a bed per subtest: newBed holds the bed lock until cleanup
			b := newBed(t, func(o *proxy.Options) { o.NoBaggage = tc.off })
			cert, err := b.ca.Fetch(context.Background(), sleepID)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if err := b.hboneClient(t, cert, "127.0.11.1", "127.0.11.1:9000", func(st *hbone.Stream) { got = st.ResponseBaggage() }); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("ENABLE_RESPONSE_BAGGAGE=%v: baggage %q, want %q", !tc.off, got, tc.want)
			}
		})
	}
}
