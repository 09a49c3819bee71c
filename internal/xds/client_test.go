package xds_test

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	discoverypb "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/istiod"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/readiness"
	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/xds"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// harness runs a client against a fake istiod until the test ends.
type harness struct {
	fake  *ztest.FakeXDS
	store *state.Store
	ready *readiness.Tracker
	logs  *ztest.LogBuffer
	c     *xds.Client
}

func start(t *testing.T, fake *ztest.FakeXDS, mutate func(*xds.ClientConfig)) *harness {
	t.Helper()
	h := &harness{fake: fake, store: state.NewStore(), ready: readiness.New(), logs: &ztest.LogBuffer{}}
	node, err := xds.Node(xds.NodeInfo{PodName: "ztunnel-x", PodNamespace: "istio-system", InstanceIP: "10.0.0.7", NodeName: "node-a",
		ProxyMetadata: map[string]string{"ISTIO_VERSION": "1.28.0"}})
	if err != nil {
		t.Fatal(err)
	}
	log, _, _ := logging.New(h.logs, "plain", "debug")
	cc := xds.ClientConfig{Address: fake.Address, Creds: istiod.CallCreds{Token: config.Token{Literal: "t"}.Read, ClusterID: "c1"},
		Node: node, Logger: log, FirstResponseTimeout: 5 * time.Second}
	if fake.ServePEM != "" {
		cc.Roots = istiod.NewRoots("", config.RootCert{PEM: fake.ServePEM}.Load)
	}
	if mutate != nil {
		mutate(&cc)
	}
	h.c, err = xds.New(cc, h.store, h.ready.Register("state manager"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { h.c.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return h
}

func workload(name, ip string) *workloadapi.Address {
	return ztest.AsAddress(ztest.Workload("default", name, ip))
}

func (h *harness) has(ip string) bool {
	return h.store.Snapshot().WorkloadByAddr("", netip.MustParseAddr(ip)) != nil
}

func TestInitialSyncFillsStateAndReadiness(t *testing.T) {
	ztest.NoLeaks(t)
	fake := ztest.NewFakeXDS(t, false)
	fake.Set(xds.AddressType, "Kubernetes//Pod/default/a", workload("a", "10.0.0.1"))
	fake.Set(xds.AddressType, "default/svc.default.svc.cluster.local", ztest.AsAddress(ztest.Service("default", "svc", []string{"10.96.0.1"}, 80, 8080)))
	fake.Set(xds.AuthorizationType, "default/deny", ztest.DenyFromNamespace("default", "deny", "foo"))
	h := start(t, fake, nil)
	ztest.Eventually(t, "readiness", func() bool { return len(h.ready.Pending()) == 0 })
	snap := h.store.Snapshot()
	if !h.has("10.0.0.1") || snap.ServiceByKey("default/svc.default.svc.cluster.local") == nil || snap.Policy("default/deny") == nil {
		t.Error("initial state incomplete")
	}
	reqs := fake.Requests()
	first := reqs[0]
	if first.Node.Id != "ztunnel~10.0.0.7~ztunnel-x.istio-system~istio-system.svc.cluster.local" {
		t.Errorf("node id %q", first.Node.Id)
	}
	md := first.Node.Metadata.Fields
	if md["NAME"].GetStringValue() != "ztunnel-x" || md["NODE_NAME"].GetStringValue() != "node-a" || md["ISTIO_VERSION"].GetStringValue() != "1.28.0" {
		t.Errorf("node metadata %v", md)
	}
	types := map[string]bool{}
	for _, r := range reqs {
		if r.ResponseNonce == "" {
			types[r.TypeUrl] = len(r.ResourceNamesSubscribe) == 0 // wildcard
		}
	}
	if !types[xds.AddressType] || !types[xds.AuthorizationType] {
		t.Errorf("subscriptions %v, want wildcard Address and Authorization", types)
	}
	ztest.Eventually(t, "ACKs", func() bool { return acks(fake) >= 2 })
}

func acks(f *ztest.FakeXDS) int {
	n := 0
	for _, r := range f.Requests() {
		if r.ResponseNonce != "" && r.ErrorDetail == nil {
			n++
		}
	}
	return n
}

func TestIncrementalAddsAndRemovals(t *testing.T) {
	ztest.NoLeaks(t)
	fake := ztest.NewFakeXDS(t, false)
	fake.Set(xds.AddressType, "Kubernetes//Pod/default/a", workload("a", "10.0.0.1"))
	h := start(t, fake, nil)
	ztest.Eventually(t, "sync", func() bool { return h.has("10.0.0.1") })
	fake.Set(xds.AddressType, "Kubernetes//Pod/default/b", workload("b", "10.0.0.2"))
	ztest.Eventually(t, "the added workload", func() bool { return h.has("10.0.0.2") })
	fake.Remove(xds.AddressType, "Kubernetes//Pod/default/a")
	ztest.Eventually(t, "the removal", func() bool { return !h.has("10.0.0.1") })
	fake.Set(xds.AuthorizationType, "default/p", ztest.DenyFromNamespace("default", "p", "x"))
	ztest.Eventually(t, "the policy", func() bool { return h.store.Snapshot().Policy("default/p") != nil })
	fake.Remove(xds.AuthorizationType, "default/p")
	ztest.Eventually(t, "the policy removal", func() bool { return h.store.Snapshot().Policy("default/p") == nil })
}

func TestBadResourceNACKedRestApplied(t *testing.T) {
	ztest.NoLeaks(t)
	fake := ztest.NewFakeXDS(t, false)
	h := start(t, fake, nil)
	ztest.Eventually(t, "sync", func() bool { return len(h.ready.Pending()) == 0 })
	fake.SetRaw(xds.AddressType, "garbage", &anypb.Any{TypeUrl: xds.AddressType, Value: []byte{0xff, 0xff}})
	bad := ztest.Workload("default", "bad", "10.0.0.3")
	bad.Addresses = append(bad.Addresses, []byte{1, 2, 3})
	fake.Set(xds.AddressType, bad.Uid, ztest.AsAddress(bad))
	fake.Set(xds.AddressType, "Kubernetes//Pod/default/good", workload("good", "10.0.0.4"))
	ztest.Eventually(t, "the good resource", func() bool { return h.has("10.0.0.4") })
	var nacks []string
	ztest.Eventually(t, "two NACKs", func() bool {
		nacks = nil
		for _, r := range fake.Requests() {
			if r.ErrorDetail != nil {
				nacks = append(nacks, r.ErrorDetail.Message)
			}
		}
		return len(nacks) == 2
	})
	if !strings.Contains(nacks[0], "garbage: decoding") || !strings.Contains(nacks[1], bad.Uid+": addresses[1]") {
		t.Errorf("NACKs %q should name each refused resource and why", nacks)
	}
	if h.has("10.0.0.3") {
		t.Error("the invalid workload was applied")
	}
}

func TestReconnectResyncsWithInitialVersions(t *testing.T) {
	ztest.NoLeaks(t)
	fake := ztest.NewFakeXDS(t, false)
	fake.Set(xds.AddressType, "Kubernetes//Pod/default/a", workload("a", "10.0.0.1"))
	fake.Set(xds.AddressType, "Kubernetes//Pod/default/b", workload("b", "10.0.0.2"))
	h := start(t, fake, func(c *xds.ClientConfig) { c.FirstResponseTimeout = 200 * time.Millisecond })
	ztest.Eventually(t, "sync", func() bool { return h.has("10.0.0.1") && h.has("10.0.0.2") })
	fake.Silent(true) // istiod goes away: changes made meanwhile are not pushed
	fake.DropStreams()
	fake.Remove(xds.AddressType, "Kubernetes//Pod/default/a")
	fake.Set(xds.AddressType, "Kubernetes//Pod/default/c", workload("c", "10.0.0.3"))
	if !h.has("10.0.0.1") {
		t.Fatal("state was dropped while istiod was away")
	}
	fake.Silent(false)
	ztest.Eventually(t, "resync", func() bool { return !h.has("10.0.0.1") && h.has("10.0.0.3") && h.has("10.0.0.2") })
	var resumed *discoverypb.DeltaDiscoveryRequest
	for _, r := range fake.Requests() {
		if r.TypeUrl == xds.AddressType && len(r.InitialResourceVersions) > 0 {
			resumed = r
		}
	}
	if resumed == nil || resumed.InitialResourceVersions["Kubernetes//Pod/default/b"] == "" {
		t.Errorf("reconnect did not send initial_resource_versions")
	}
}

func TestSilentServerIsLeft(t *testing.T) {
	ztest.NoLeaks(t)
	fake := ztest.NewFakeXDS(t, false)
	fake.Set(xds.AddressType, "Kubernetes//Pod/default/a", workload("a", "10.0.0.1"))
	fake.Silent(true)
	h := start(t, fake, func(c *xds.ClientConfig) { c.FirstResponseTimeout = 100 * time.Millisecond })
	ztest.Eventually(t, "the client to give up on the silent stream", func() bool {
		return strings.Contains(h.logs.String(), "istiod accepted the stream but sent nothing")
	})
	fake.Silent(false)
	ztest.Eventually(t, "a fresh stream to sync", func() bool { return h.has("10.0.0.1") })
}

func TestOnDemand(t *testing.T) {
	ztest.NoLeaks(t)
	fake := ztest.NewFakeXDS(t, false)
	fake.Set(xds.AddressType, "/10.0.0.9", workload("remote", "10.0.0.9"))
	fake.Set(xds.AddressType, "Kubernetes//Pod/default/other", workload("other", "10.0.0.8"))
	h := start(t, fake, func(c *xds.ClientConfig) { c.OnDemand = true })
	ztest.Eventually(t, "readiness (Authorization only)", func() bool { return len(h.ready.Pending()) == 0 })
	if h.has("10.0.0.9") || h.has("10.0.0.8") {
		t.Fatal("on-demand client received addresses it did not ask for")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.c.Demand(ctx, "/10.0.0.9"); err != nil {
		t.Fatal(err)
	}
	if !h.has("10.0.0.9") || h.has("10.0.0.8") {
		t.Error("on-demand lookup did not bring exactly the asked workload")
	}
	if err := h.c.Demand(ctx, "/10.9.9.9"); err != nil { // unknown to istiod: answered as removed
		t.Error(err)
	}
	for _, r := range fake.Requests() {
		if r.TypeUrl == xds.AddressType && r.ResponseNonce == "" && len(r.ResourceNamesUnsubscribe) > 0 {
			return // the first request was the explicit non-wildcard subscription
		}
	}
	t.Error("on-demand mode did not unsubscribe the wildcard")
}

func TestWrongRootRefused(t *testing.T) {
	ztest.NoLeaks(t)
	fake := ztest.NewFakeXDS(t, true)
	other := ztest.NewFakeXDS(t, true)
	h := start(t, fake, func(c *xds.ClientConfig) { c.Roots = istiod.NewRoots("", config.RootCert{PEM: other.ServePEM}.Load) })
	ztest.Eventually(t, "a clear TLS error", func() bool {
		return strings.Contains(h.logs.String(), "certificate signed by unknown authority")
	})
	if len(h.ready.Pending()) == 0 {
		t.Error("ready without a trusted istiod")
	}
}
