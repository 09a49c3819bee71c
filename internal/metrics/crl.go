package metrics

import "github.com/prometheus/client_golang/prometheus"

// CRL counts certificate revocation enforcement: the first two under Rust ztunnel's
// names and labels (src/proxy/metrics.rs), the reload failures ours. A nil *CRL records
// nothing.
type CRL struct {
	rejections    *prometheus.CounterVec
	untracked     *prometheus.CounterVec
	reloadFailure prometheus.Counter
}

// NewCRL registers the CRL metrics on reg.
func NewCRL(reg prometheus.Registerer) *CRL {
	c := &CRL{
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_crl_policy_rejections_total",
			Help: "The total number of connections rejected due to CRL certificate revocation (unstable)",
		}, []string{"reporter"}),
		untracked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_crl_untracked_connections_total",
			Help: "The total number of connections not tracked for CRL enforcement (unstable)",
		}, []string{"reporter"}),
		reloadFailure: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "istio_crl_reload_failures_total",
			Help: "The total number of CRL file loads refused (unreadable, unparsable, or not signed by a mesh CA); the previous CRLs stay in force",
		}),
	}
	reg.MustRegister(c.rejections, c.untracked, c.reloadFailure)
	return c
}

// Rejected counts a connection refused or closed because its peer is revoked.
func (c *CRL) Rejected(reporter string) {
	if c != nil {
		c.rejections.WithLabelValues(reporter).Inc()
	}
}

// Untracked counts an open connection that CRL reloads cannot judge.
func (c *CRL) Untracked(reporter string) {
	if c != nil {
		c.untracked.WithLabelValues(reporter).Inc()
	}
}

// ReloadFailed counts a CRL file that was not taken.
func (c *CRL) ReloadFailed() {
	if c != nil {
		c.reloadFailure.Inc()
	}
}
