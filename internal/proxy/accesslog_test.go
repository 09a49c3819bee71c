package proxy

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// TestAccessLogJSON checks the JSON access line key by key and in order.
func TestAccessLogJSON(t *testing.T) {
	ztest.NoLeaks(t)
	var buf bytes.Buffer
	log, _, _ := logging.New(&buf, "json", "info")
	p := &Proxy{access: logging.Scoped(log, "access")}
	s := state.NewStore()
	src, dst := ztest.Workload("foo", "sleep", "10.0.0.1"), ztest.Workload("default", "echo-1", "10.0.0.2")
	svc := ztest.Service("default", "echo", []string{"10.96.0.1"}, 80, 8080)
	s.Apply(state.Update{Addresses: []*workloadapi.Address{ztest.AsAddress(src), ztest.AsAddress(dst), ztest.AsAddress(svc)}})
	snap := s.Snapshot()
	r := &record{start: time.Now().Add(-42 * time.Millisecond), inbound: true, mtls: true,
		src: netip.MustParseAddrPort("10.0.0.1:40000"), dst: netip.MustParseAddrPort("10.0.0.2:8080"),
		hboneAddr: "10.0.0.2:8080", srcW: snap.WorkloadByUID(src.Uid), dstW: snap.WorkloadByUID(dst.Uid),
		svc:   snap.ServiceByKey("default/echo.default.svc.cluster.local"),
		srcID: identity.New("cluster.local", "foo", "sleep"), dstID: identity.New("cluster.local", "default", "echo-1")}
	p.complete(r, 100, 7, nil)

	dec := json.NewDecoder(&buf)
	dec.Token() // {
	var keys []string
	values := map[string]any{}
	for dec.More() {
		k, _ := dec.Token()
		var v any
		dec.Decode(&v)
		keys = append(keys, k.(string))
		values[k.(string)] = v
	}
	wantKeys := []string{"level", "time", "scope", "message", "src.addr", "src.workload", "src.namespace", "src.identity", "src.cluster",
		"dst.addr", "dst.hbone_addr", "dst.service", "dst.workload", "dst.namespace", "dst.identity", "dst.cluster", "direction",
		"bytes_sent", "bytes_recv", "duration"}
	if len(keys) != len(wantKeys) {
		t.Fatalf("keys %v\nwant %v", keys, wantKeys)
	}
	for i := range keys {
		if keys[i] != wantKeys[i] {
			t.Errorf("key %d = %q, want %q", i, keys[i], wantKeys[i])
		}
	}
	want := map[string]any{"level": "info", "scope": "access", "message": "connection complete", "src.addr": "10.0.0.1:40000",
		"src.workload": "sleep", "src.namespace": "foo", "src.identity": "spiffe://cluster.local/ns/foo/sa/sleep",
		"dst.addr": "10.0.0.2:8080", "dst.hbone_addr": "10.0.0.2:8080", "dst.service": "echo.default.svc.cluster.local",
		"dst.workload": "echo-1", "dst.namespace": "default", "dst.identity": "spiffe://cluster.local/ns/default/sa/echo-1",
		"direction": "inbound", "bytes_sent": float64(100), "bytes_recv": float64(7)}
	for k, v := range want {
		if values[k] != v {
			t.Errorf("%s = %v, want %v", k, values[k], v)
		}
	}
	if d, _ := values["duration"].(string); len(d) < 3 || d[len(d)-2:] != "ms" {
		t.Errorf("duration = %v", values["duration"])
	}
}

// TestBaggageDescribesAnUnknownSource checks that what one ztunnel sends about its
// workload is what the other reports for a source it has no record of.
func TestBaggageDescribesAnUnknownSource(t *testing.T) {
	ztest.NoLeaks(t)
	w := ztest.Workload("foo", "sleep", "10.0.0.1")
	w.ClusterId, w.WorkloadName, w.CanonicalName, w.CanonicalRevision = "east", "sleep", "sleep-svc", "v2"
	w.WorkloadType = workloadapi.WorkloadType_DEPLOYMENT
	w.Locality = &workloadapi.Locality{Region: "eu", Zone: "eu-1a"}
	s := state.NewStore()
	s.Apply(state.Update{Addresses: []*workloadapi.Address{ztest.AsAddress(w)}})
	sw := s.Snapshot().WorkloadByUID(w.Uid)

	r := &record{inbound: true, mtls: true, baggage: baggage(sw)}
	l := r.labels()
	got := []string{l.SrcCluster, l.SrcNS, l.SrcWorkload, l.SrcCanonicalService, l.SrcApp,
		l.SrcCanonicalRevision, l.SrcVersion, l.SrcRegion, l.SrcZone}
	want := []string{"east", "foo", "sleep", "sleep-svc", "sleep-svc", "v2", "v2", "eu", "eu-1a"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("source labels from baggage %q = %q, want %q", r.baggage, got, want)
			break
		}
	}
}
