package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// trafficLabel is one of Istio's standard TCP labels and where a connection's value
// comes from: one row per label, so that a name and its value cannot get out of step.
type trafficLabel struct {
	name  string
	value func(l *ConnLabels, flags string) string
}

// trafficLabels are in the order Rust ztunnel encodes them.
var trafficLabels = []trafficLabel{
	{"reporter", func(l *ConnLabels, _ string) string { return l.Reporter }},
	{"source_workload", func(l *ConnLabels, _ string) string { return l.SrcWorkload }},
	{"source_canonical_service", func(l *ConnLabels, _ string) string { return l.SrcCanonicalService }},
	{"source_canonical_revision", func(l *ConnLabels, _ string) string { return l.SrcCanonicalRevision }},
	{"source_workload_namespace", func(l *ConnLabels, _ string) string { return l.SrcNS }},
	{"source_principal", func(l *ConnLabels, _ string) string { return l.SrcPrincipal }},
	{"source_app", func(l *ConnLabels, _ string) string { return l.SrcApp }},
	{"source_version", func(l *ConnLabels, _ string) string { return l.SrcVersion }},
	{"source_cluster", func(l *ConnLabels, _ string) string { return l.SrcCluster }},
	{"destination_service", func(l *ConnLabels, _ string) string { return l.DstService }},
	{"destination_service_namespace", func(l *ConnLabels, _ string) string { return l.DstServiceNS }},
	{"destination_service_name", func(l *ConnLabels, _ string) string { return l.DstServiceName }},
	{"destination_workload", func(l *ConnLabels, _ string) string { return l.DstWorkload }},
	{"destination_canonical_service", func(l *ConnLabels, _ string) string { return l.DstCanonicalService }},
	{"destination_canonical_revision", func(l *ConnLabels, _ string) string { return l.DstCanonicalRevision }},
	{"destination_workload_namespace", func(l *ConnLabels, _ string) string { return l.DstNS }},
	{"destination_principal", func(l *ConnLabels, _ string) string { return l.DstPrincipal }},
	{"destination_app", func(l *ConnLabels, _ string) string { return l.DstApp }},
	{"destination_version", func(l *ConnLabels, _ string) string { return l.DstVersion }},
	{"destination_cluster", func(l *ConnLabels, _ string) string { return l.DstCluster }},
	{"request_protocol", func(*ConnLabels, string) string { return "tcp" }},
	{"response_flags", func(_ *ConnLabels, flags string) string { return flags }},
	{"connection_security_policy", func(l *ConnLabels, _ string) string {
		if l.MutualTLS {
			return "mutual_tls"
		}
		return ""
	}},
	{"source_region", func(l *ConnLabels, _ string) string { return l.SrcRegion }},
	{"source_zone", func(l *ConnLabels, _ string) string { return l.SrcZone }},
	{"destination_region", func(l *ConnLabels, _ string) string { return l.DstRegion }},
	{"destination_zone", func(l *ConnLabels, _ string) string { return l.DstZone }},
}

// trafficLabelNames are the label names, for the metric vectors.
func trafficLabelNames() []string {
	names := make([]string, len(trafficLabels))
	for i, lb := range trafficLabels {
		names[i] = lb.name
	}
	return names
}

// ConnLabels describe one connection for the traffic metrics. Empty fields render as
// "unknown": Prometheus would drop an empty label, and Kiali treats it as absent.
type ConnLabels struct {
	Reporter                                                      string // source | destination
	SrcWorkload, SrcCanonicalService, SrcCanonicalRevision, SrcNS string
	SrcPrincipal, SrcApp, SrcVersion, SrcCluster                  string
	DstService, DstServiceNS, DstServiceName                      string
	DstWorkload, DstCanonicalService, DstCanonicalRevision, DstNS string
	DstPrincipal, DstApp, DstVersion, DstCluster                  string
	MutualTLS                                                     bool
	SrcRegion, SrcZone, DstRegion, DstZone                        string
}

// values are the connection's label values in trafficLabels' order, "unknown" where
// empty.
func (l *ConnLabels) values(flags string) []string {
	v := make([]string, len(trafficLabels))
	for i, lb := range trafficLabels {
		v[i] = lb.value(l, flags)
	}
	return unknownIfEmpty(v)
}

// unknownIfEmpty writes "unknown" for every empty label value, in place.
func unknownIfEmpty(v []string) []string {
	for i, s := range v {
		if s == "" {
			v[i] = "unknown"
		}
	}
	return v
}

// Traffic holds Istio's TCP metrics. A nil *Traffic records nothing.
type Traffic struct {
	opened, closed, failed *prometheus.CounterVec
	received, sent         *prometheus.CounterVec
	open                   *prometheus.GaugeVec
	hboneErrors            *prometheus.CounterVec
	handshakeFailures      *prometheus.CounterVec
	onDemandDNS            *prometheus.CounterVec
}

// NewTraffic registers the TCP metrics on reg, under the names Istio's dashboards and
// Kiali query (with _total, in the text format too).
func NewTraffic(reg prometheus.Registerer) *Traffic {
	names := trafficLabelNames()
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, names)
	}
	t := &Traffic{
		opened:   counter("istio_tcp_connections_opened_total", "The total number of TCP connections opened"),
		closed:   counter("istio_tcp_connections_closed_total", "The total number of TCP connections closed"),
		failed:   counter("istio_tcp_connections_failed_total", "The total number of TCP connections that failed to establish (unstable)"),
		received: counter("istio_tcp_received_bytes_total", "The size of total bytes received during request in case of a TCP connection"),
		sent:     counter("istio_tcp_sent_bytes_total", "The size of total bytes sent during response in case of a TCP connection"),
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "istio_tcp_sockets_open",
			Help: "The current number of open TCP sockets (unstable)"}, []string{"reporter"}),
	}
	// Ours (Rust ztunnel has none): floods and protocol errors on HBONE connections.
	t.hboneErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ztunnel_hbone_errors_total",
		Help: "HTTP/2 protocol errors and floods detected on HBONE connections, by scope and code"},
		[]string{"scope", "code"})
	t.handshakeFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ztunnel_hbone_handshake_failures_total",
		Help: "Inbound HBONE connections that never carried a stream: TLS handshake failed or timed out, or no HTTP/2 preface"},
		[]string{"reason"})
	t.onDemandDNS = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "istio_on_demand_dns_total",
		Help: "The total number of requests that used on-demand DNS (unstable)"},
		[]string{"source_workload", "source_canonical_service", "source_canonical_revision", "source_workload_namespace",
			"source_principal", "source_app", "source_version", "source_cluster", "hostname"})
	reg.MustRegister(t.opened, t.closed, t.failed, t.received, t.sent, t.open, t.hboneErrors, t.handshakeFailures, t.onDemandDNS)
	return t
}

// OnDemandDNS counts one connection that resolved a workload's hostname (Rust
// OnDemandDnsLabels: the source's labels of l, and the hostname).
func (t *Traffic) OnDemandDNS(l *ConnLabels, hostname string) {
	if t != nil {
		t.onDemandDNS.WithLabelValues(unknownIfEmpty([]string{l.SrcWorkload, l.SrcCanonicalService, l.SrcCanonicalRevision,
			l.SrcNS, l.SrcPrincipal, l.SrcApp, l.SrcVersion, l.SrcCluster, hostname})...).Inc()
	}
}

// HBONEError counts one protocol error or flood (hbone.Settings.CountError).
func (t *Traffic) HBONEError(scope, code string) {
	if t != nil {
		t.hboneErrors.WithLabelValues(scope, code).Inc()
	}
}

// HandshakeFailure counts an inbound connection that failed before HTTP/2: reason
// "timeout", "tls" or "not_http2".
func (t *Traffic) HandshakeFailure(reason string) {
	if t != nil {
		t.handshakeFailures.WithLabelValues(reason).Inc()
	}
}

// Conn is one open connection's counters, bound once so that counting bytes as they
// flow costs an atomic add. A nil *Conn records nothing.
type Conn struct {
	t        *Traffic
	labels   *ConnLabels
	received prometheus.Counter // client → server
	sent     prometheus.Counter // server → client
}

// Open counts a connection as opened and returns its counters.
func (t *Traffic) Open(l *ConnLabels) *Conn {
	if t == nil {
		return nil
	}
	v := l.values("-")
	t.opened.WithLabelValues(v...).Inc()
	t.open.WithLabelValues(l.Reporter).Inc()
	return &Conn{t: t, labels: l, received: t.received.WithLabelValues(v...), sent: t.sent.WithLabelValues(v...)}
}

// Failed counts a connection that was routed but never carried data, as Rust's
// ConnectionResult does: opened, then closed and failed with its response flag (DENY,
// CONNECT, TLS_FAILURE, …). A connection refused before it was routed counts nowhere
// (Rust log_early_deny): only the access log has it.
func (t *Traffic) Failed(l *ConnLabels, flags string) {
	if t != nil {
		t.opened.WithLabelValues(l.values("-")...).Inc()
		v := l.values(flags)
		t.closed.WithLabelValues(v...).Inc()
		t.failed.WithLabelValues(v...).Inc()
	}
}

// ClientToServer and ServerToClient count bytes as they are copied.
func (c *Conn) ClientToServer(n int64) {
	if c != nil {
		c.received.Add(float64(n))
	}
}

func (c *Conn) ServerToClient(n int64) {
	if c != nil {
		c.sent.Add(float64(n))
	}
}

// Close counts the connection's end; flags is "-" unless it ended by a decision (DENY
// from a policy change).
func (c *Conn) Close(flags string) {
	if c == nil {
		return
	}
	c.t.closed.WithLabelValues(c.labels.values(flags)...).Inc()
	c.t.open.WithLabelValues(c.labels.Reporter).Dec()
}
