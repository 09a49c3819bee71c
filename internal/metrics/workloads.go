package metrics

import "github.com/prometheus/client_golang/prometheus"

// WorkloadManager counts in-pod proxies under Rust ztunnel's `workload_manager` prefix
// (its README calls them istio_*, but the names below are what it registers and what
// dashboards scrape). A nil *WorkloadManager records nothing.
type WorkloadManager struct {
	active, pending  prometheus.Gauge
	started, stopped prometheus.Counter
}

// NewWorkloadManager registers the in-pod proxy metrics on reg.
func NewWorkloadManager(reg prometheus.Registerer) *WorkloadManager {
	w := &WorkloadManager{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "workload_manager_active_proxy_count", Help: "The current number active proxies",
		}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "workload_manager_pending_proxy_count", Help: "The current number of pending proxies",
		}),
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "workload_manager_proxies_started_total", Help: "The total number of proxies that were started",
		}),
		stopped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "workload_manager_proxies_stopped_total", Help: "The total number of proxies that were stopped",
		}),
	}
	reg.MustRegister(w.active, w.pending, w.started, w.stopped)
	return w
}

// Started counts a pod whose proxies began serving.
func (w *WorkloadManager) Started() {
	if w != nil {
		w.started.Inc()
	}
}

// Stopped counts a pod whose proxies were stopped.
func (w *WorkloadManager) Stopped() {
	if w != nil {
		w.stopped.Inc()
	}
}

// Set records how many pods are served and how many wait for a retry.
func (w *WorkloadManager) Set(active, pending int) {
	if w != nil {
		w.active.Set(float64(active))
		w.pending.Set(float64(pending))
	}
}
