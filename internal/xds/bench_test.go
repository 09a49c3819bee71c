package xds

import (
	"fmt"
	"testing"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// BenchmarkLargePush applies one Address push of 100,000 workloads and 10,000 services
// (a large cluster's full state) through the client's decode-and-apply path. It reports
// time and memory per push; it asserts nothing about them.
func BenchmarkLargePush(b *testing.B) {
	resp := &discoverypb.DeltaDiscoveryResponse{TypeUrl: AddressType, Nonce: "1"}
	for i := range 10_000 {
		svc := ztest.Service("ns", fmt.Sprintf("s%d", i), []string{fmt.Sprintf("10.%d.%d.%d", 96+i/65536, i/256%256, i%256)}, 80, 8080)
		a, _ := anypb.New(ztest.AsAddress(svc))
		resp.Resources = append(resp.Resources, &discoverypb.Resource{Name: "ns/" + svc.Hostname, Version: "1", Resource: a})
	}
	for i := range 100_000 {
		w := ztest.Workload("ns", fmt.Sprintf("w%d", i), fmt.Sprintf("10.%d.%d.%d", i/65536, i/256%256, i%256))
		ztest.WithService(w, fmt.Sprintf("ns/s%d.ns.svc.cluster.local", i%10_000), 80, 8080)
		a, _ := anypb.New(ztest.AsAddress(w))
		resp.Resources = append(resp.Resources, &discoverypb.Resource{Name: w.Uid, Version: "1", Resource: a})
	}
	c, err := New(ClientConfig{Address: "http://127.0.0.1:1"}, state.NewStore(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer c.conn.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if ack := c.handle(resp); ack.ErrorDetail != nil {
			b.Fatal(ack.ErrorDetail.Message)
		}
	}
}
