package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// trafficLabels are Istio's standard TCP labels, in the order Rust ztunnel encodes them.
var trafficLabels = []string{
	"reporter",
	"source_workload", "source_canonical_service", "source_canonical_revision", "source_workload_namespace",
	"source_principal", "source_app", "source_version", "source_cluster",
	"destination_service", "destination_service_namespace", "destination_service_name",
	"destination_workload", "destination_canonical_service", "destination_canonical_revision",
	"destination_workload_namespace", "destination_principal", "destination_app", "destination_version",
	"destination_cluster",
	"request_protocol", "response_flags", "connection_security_policy",
	"source_region", "source_zone", "destination_region", "destination_zone",
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

func (l *ConnLabels) values(flags string) []string {
	security := "unknown"
	if l.MutualTLS {
		security = "mutual_tls"
	}
	v := []string{l.Reporter,
		l.SrcWorkload, l.SrcCanonicalService, l.SrcCanonicalRevision, l.SrcNS,
		l.SrcPrincipal, l.SrcApp, l.SrcVersion, l.SrcCluster,
		l.DstService, l.DstServiceNS, l.DstServiceName,
		l.DstWorkload, l.DstCanonicalService, l.DstCanonicalRevision, l.DstNS,
		l.DstPrincipal, l.DstApp, l.DstVersion, l.DstCluster,
		"tcp", flags, security,
		l.SrcRegion, l.SrcZone, l.DstRegion, l.DstZone}
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
}

// NewTraffic registers the TCP metrics on reg, under the names Istio's dashboards and
// Kiali query (with _total, in the text format too).
func NewTraffic(reg prometheus.Registerer) *Traffic {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, trafficLabels)
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
	reg.MustRegister(t.opened, t.closed, t.failed, t.received, t.sent, t.open, t.hboneErrors, t.handshakeFailures)
	return t
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

// Failed counts a connection that never carried data, with its response flag (DENY,
// CONNECT, TLS_FAILURE, …).
func (t *Traffic) Failed(l *ConnLabels, flags string) {
	if t != nil {
		t.failed.WithLabelValues(l.values(flags)...).Inc()
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
