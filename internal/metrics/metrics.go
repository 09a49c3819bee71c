// Package metrics owns ztunnel's Prometheus registry (never the global one) and serves it
// on 15020 at the paths Istio's scrape config and dashboards use.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// NewRegistry returns a registry with istio_build and the Go process and runtime
// metrics. It adds no pod, namespace or app labels: Istio's Prometheus job uses
// honor_labels, so such labels would override the scrape target's own.
func NewRegistry(istioVersion string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "istio_build",
		Help: "Istio component build info",
	}, []string{"component", "tag"})
	build.WithLabelValues("ztunnel", istioVersion).Set(1)
	reg.MustRegister(build,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves /metrics and /stats/prometheus (the same content), in the text format,
// or OpenMetrics when the scraper's Accept header asks for it.
func Handler(g prometheus.Gatherer) http.Handler {
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{EnableOpenMetrics: true})
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	mux.Handle("/stats/prometheus", h)
	return mux
}
