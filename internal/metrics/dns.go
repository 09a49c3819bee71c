package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DNSLabels are Rust ztunnel's labels of every istio_dns_* series. Empty values are
// written "unknown", as Rust's DefaultedUnknown does.
type DNSLabels struct {
	QueryType         string // lowercase: a, aaaa, srv …
	Protocol          string // udp or tcp
	CanonicalService  string // of the client workload
	CanonicalRevision string
}

func (l DNSLabels) values() []string {
	return unknownIfEmpty([]string{l.QueryType, l.Protocol, l.CanonicalService, l.CanonicalRevision})
}

// DNS counts the DNS proxy's work under Rust ztunnel's names, buckets and labels, plus
// our own count of refused queries. A nil *DNS records nothing.
type DNS struct {
	requests, upstream, failures *prometheus.CounterVec
	duration                     *prometheus.HistogramVec
	rejected                     *prometheus.CounterVec
}

var dnsLabelNames = []string{"request_query_type", "request_protocol", "source_canonical_service", "source_canonical_revision"}

// NewDNS registers the DNS proxy metrics on reg.
func NewDNS(reg prometheus.Registerer) *DNS {
	d := &DNS{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_dns_requests_total", Help: "Total number of DNS requests (unstable)",
		}, dnsLabelNames),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_dns_upstream_requests_total", Help: "Total number of DNS requests forwarded to upstream (unstable)",
		}, dnsLabelNames),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_dns_upstream_failures_total", Help: "Total number of DNS requests that failed to forward upstream (unstable)",
		}, dnsLabelNames),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "istio_dns_upstream_request_duration_seconds",
			Help:    "Total time in seconds Istio takes to get DNS response from upstream (unstable)",
			Buckets: []float64{0.0005, 0.001, 0.01, 0.1, 1, 5},
		}, dnsLabelNames),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ztunnel_dns_rejected_requests_total",
			Help: "DNS messages refused before any lookup, by reason: malformed, not_query, opcode, question, class, type, edns_version, tcp_stalled, overload (ours)",
		}, []string{"reason"}),
	}
	reg.MustRegister(d.requests, d.upstream, d.failures, d.duration, d.rejected)
	return d
}

// Request counts one query that reached the lookup (answered or forwarded).
func (d *DNS) Request(l DNSLabels) {
	if d != nil {
		d.requests.WithLabelValues(l.values()...).Inc()
	}
}

// Forwarded counts one query sent upstream and how long the upstream took; failed is
// true when no usable answer came back.
func (d *DNS) Forwarded(l DNSLabels, took time.Duration, failed bool) {
	if d == nil {
		return
	}
	v := l.values()
	d.upstream.WithLabelValues(v...).Inc()
	d.duration.WithLabelValues(v...).Observe(took.Seconds())
	if failed {
		d.failures.WithLabelValues(v...).Inc()
	}
}

// Rejected counts a message refused before lookup.
func (d *DNS) Rejected(reason string) {
	if d != nil {
		d.rejected.WithLabelValues(reason).Inc()
	}
}
