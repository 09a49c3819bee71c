package proxy_test

import (
	"context"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// TestInboundFromGateway pins Rust build_inbound_request's from_gateway: a CONNECT
// whose x-forwarded-network names another network came through an east-west gateway,
// so the peer's address (here sleep's, as a gateway's could be any local workload's)
// says nothing of the source: its labels come from its baggage and its identity from
// its certificate.
func TestInboundFromGateway(t *testing.T) {
	ztest.NoLeaks(t)
	b := newBed(t)
	cert, err := b.ca.Fetch(context.Background(), sleepID)
	if err != nil {
		t.Fatal(err)
	}
	bag := "k8s.cluster.name=remote,k8s.namespace.name=far-ns,k8s.pod.name=far-pod,service.name=far-app,service.version=v9"
	req := &hbone.Request{Authority: "127.0.11.1:9000", Baggage: bag, ForwardedNetwork: "net-far"}
	if err := b.hboneRequest(t, cert, sleepIP, "127.0.11.1", req); err != nil {
		t.Fatal(err)
	}
	ztest.Eventually(t, "the connection counted", func() bool { return b.b.logs.WaitFor("connection complete") })
	got := labelsOf(t, b.b.metrics, "istio_tcp_connections_opened_total", "destination")
	want := map[string]string{"source_workload": "far-pod", "source_workload_namespace": "far-ns", "source_cluster": "remote",
		"source_canonical_service": "far-app", "source_canonical_revision": "v9", "source_principal": sleepID.String()}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (labels %v)", k, got[k], v, got)
		}
	}
	if !b.b.logs.WaitFor("src.workload=far-app src.namespace=far-ns") {
		t.Errorf("the access log does not name the baggage's source:\n%s", b.b.logs)
	}
}
