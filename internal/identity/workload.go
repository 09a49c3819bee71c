package identity

// Workload names one workload the way every room speaks of it: istio-cni's ZDS (a pod's
// uid, name, namespace, service account), PROXY_WORKLOAD_INFO (dedicated mode, no uid),
// the connection dump and the proxies serving a pod. It is the value kept across rooms;
// the workload as istiod describes it is state.Workload.
type Workload struct {
	UID            string // istio-cni's pod uid; empty when nobody gave one (dedicated mode)
	Namespace      string
	Name           string
	ServiceAccount string
}

// ID is the identity the workload's certificate proves, in trustDomain.
func (w Workload) ID(trustDomain string) Identity {
	return New(trustDomain, w.Namespace, w.ServiceAccount)
}
