package metrics

import "github.com/prometheus/client_golang/prometheus"

// XDS counts the control-plane stream's life, under Rust ztunnel's names. A nil *XDS
// records nothing, so code that is given none needs no checks.
type XDS struct {
	terminations *prometheus.CounterVec
	messages     *prometheus.CounterVec
	bytes        *prometheus.CounterVec
}

// NewXDS registers the xDS metrics on reg.
func NewXDS(reg prometheus.Registerer) *XDS {
	x := &XDS{
		terminations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_xds_connection_terminations_total", Help: "The total number of completed connections to xds server (unstable)",
		}, []string{"reason"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_xds_message_total", Help: "Total number of messages received (unstable)",
		}, []string{"url"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_xds_message_bytes_total", Help: "Total number of bytes received (unstable)",
		}, []string{"url"}),
	}
	reg.MustRegister(x.terminations, x.messages, x.bytes)
	return x
}

// Terminated counts a stream's end: ConnectionError, Error, Reconnect or Complete.
func (x *XDS) Terminated(reason string) {
	if x != nil {
		x.terminations.WithLabelValues(reason).Inc()
	}
}

// Received counts one response of type url and its size.
func (x *XDS) Received(url string, size int) {
	if x != nil {
		x.messages.WithLabelValues(url).Inc()
		x.bytes.WithLabelValues(url).Add(float64(size))
	}
}
