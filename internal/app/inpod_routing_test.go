//go:build linux

package app_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"istio.io/istio/pkg/workloadapi"

	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// routingMesh adds, to the bed's mesh, what routing parity is shown on:
//   - "private" (default, VIP 10.96.1.1), NAMESPACE-scoped, backed by echo-b;
//   - "api.example.com" in two namespaces on one VIP 10.96.1.2: foo's backed by echo-a,
//     default's by echo-b;
//   - echo-b dual-stack, its IPv6 address listed first (the bed routes IPv4 only, so
//     only the family asked for reaches it);
//   - "split" (VIP 10.96.1.4:8080) with weighted waypoints echo-a (3) and echo-b (1):
//     each waypoint's ztunnel takes the CONNECT for the VIP and hands it to its own
//     pod's 8080, so whoever answers names the waypoint chosen.
func routingMesh() []*workloadapi.Address {
	svc := func(ns, name, host, vip string, port, target uint32) *workloadapi.Service {
		s := ztest.Service(ns, name, []string{vip}, port, target)
		s.Hostname = host
		return s
	}
	private := svc("default", "private", "private.default.svc.cluster.local", "10.96.1.1", 80, 8080)
	private.Visibility = workloadapi.Service_NAMESPACE
	split := svc("default", "split", "split.default.svc.cluster.local", "10.96.1.4", 8080, 8080)
	wp := func(ip string, weight uint32) *workloadapi.WeightedWaypoint {
		return &workloadapi.WeightedWaypoint{Weight: weight, Destination: &workloadapi.GatewayAddress{
			Destination: &workloadapi.GatewayAddress_Address{Address: ztest.NetworkAddress("", ip)}, HboneMtlsPort: 15008}}
	}
	split.WeightedWaypoints = []*workloadapi.WeightedWaypoint{wp("10.70.1.12", 3), wp("10.70.2.10", 1)}
	split.Waypoint = split.WeightedWaypoints[0].Destination
	echo := func(name, ip, node string, extra ...string) *workloadapi.Workload {
		w := ztest.Workload("default", name, ip)
		w.Uid, w.ServiceAccount, w.Node, w.WorkloadName, w.CanonicalName = "c//"+name, "echo", node, "echo", "echo"
		w.Addresses = nil
		for _, a := range append(extra, ip) {
			w.Addresses = append(w.Addresses, ztest.IP(a))
		}
		ztest.WithService(w, "default/echo.default.svc.cluster.local", 80, 8080)
		return w
	}
	echoA := ztest.WithService(echo("echo-a", "10.70.1.12", "n1"), "foo/api.example.com", 80, 8080)
	echoB := echo("echo-b", "10.70.2.10", "n2", "fd00:70::2:10")
	ztest.WithService(echoB, "default/private.default.svc.cluster.local", 80, 8080)
	ztest.WithService(echoB, "default/api.example.com", 80, 8080)
	return ztest.AsAddresses(private, split, svc("foo", "api", "api.example.com", "10.96.1.2", 80, 8080),
		svc("default", "api", "api.example.com", "10.96.1.2", 80, 8080), echoA, echoB)
}

// TestInPodRouting shows routing parity end to end (Rust build_request, get_best_by_vip,
// pick_workload_destination_or_resolve, sample_weighted_waypoint, wait_for_workload):
// pods in network namespaces, istio-cni's rules, ztunnel in in-pod mode on two nodes.
func TestInPodRouting(t *testing.T) {
	ztest.NoLeaks(t)
	c := newCluster(t)
	for i := 1; i <= 2; i++ {
		if errs := c.nodes[i].app.State().Apply(state.Update{Addresses: routingMesh()}); len(errs) > 0 {
			t.Fatal(errs)
		}
	}
	sleep, echoA := c.pods["sleep"], c.pods["echo-a"]

	t.Run("a namespace-scoped service is not a destination for another namespace", func(t *testing.T) {
		if server, _, err := ask(t, echoA, "10.96.1.1:80"); err != nil || server != "10.70.2.10:8080" {
			t.Fatalf("echo-a (default) → private: %q, %v; want echo-b", server, err)
		}
		if server, _, err := ask(t, sleep, "10.96.1.1:80"); err == nil {
			t.Fatalf("sleep (foo) reached the private service: %q", server)
		}
		// ztunnel did not know the VIP for foo: it passed through, reaching nothing.
		if !c.nodes[1].logs.WaitFor("dst.addr=10.96.1.1:80 direction=outbound error=") {
			t.Errorf("no passthrough failure logged for sleep's connection:\n%s", c.nodes[1].logs)
		}
		var why struct {
			Kind string
			Why  []string
		}
		getJSON(t, c.nodes[1], "/debug/route?src=10.70.1.10&dst=10.96.1.1:80", &why)
		if why.Kind != "passthrough" || !strings.Contains(strings.Join(why.Why, "\n"), "visible only to namespace default") {
			t.Errorf("/debug/route for sleep → private = %+v", why)
		}
	})
	t.Run("two services on one VIP: the client's namespace's", func(t *testing.T) {
		if server, _, err := ask(t, sleep, "10.96.1.2:80"); err != nil || server != "10.70.1.12:8080" {
			t.Errorf("sleep (foo) → 10.96.1.2: %q, %v; want foo's api on echo-a", server, err)
		}
		if server, _, err := ask(t, echoA, "10.96.1.2:80"); err != nil || server != "10.70.2.10:8080" {
			t.Errorf("echo-a (default) → 10.96.1.2: %q, %v; want default's api on echo-b", server, err)
		}
	})
	t.Run("a dual-stack pod is reached over the family asked for", func(t *testing.T) {
		for range 10 { // echo's VIP spreads over echo-a and echo-b: each must answer
			if server, _, err := ask(t, sleep, "10.96.0.10:80"); err != nil {
				t.Fatalf("sleep → echo's VIP: %q, %v (echo-b's IPv6 was dialled?)", server, err)
			}
		}
		if !c.nodes[1].logs.WaitFor("dst.addr=10.70.2.10:15008 dst.hbone_addr=10.70.2.10:8080 dst.service=echo.default.svc.cluster.local") {
			t.Errorf("echo-b not reached over IPv4:\n%s", c.nodes[1].logs)
		}
	})
	t.Run("weighted waypoints split new connections by weight", func(t *testing.T) {
		seen := map[string]int{}
		const n = 60
		for range n {
			server, client, err := ask(t, sleep, "10.96.1.4:8080")
			if err != nil || host(client) != sleep.IP {
				t.Fatalf("sleep → split: %q from %q, %v", server, client, err)
			}
			seen[server]++
		}
		// Weights 3:1 give echo-a 45 of 60 on average (σ ≈ 3.4); outside 33..57 is a bug.
		if a, b := seen["10.70.1.12:8080"], seen["10.70.2.10:8080"]; a+b != n || a < 33 || a > 57 || b == 0 {
			t.Errorf("waypoint split %v over %d connections, want about 45:15", seen, n)
		}
	})
	t.Run("a pod whose workload arrives late gets through", func(t *testing.T) {
		store := c.nodes[1].app.State()
		other := store.Snapshot().WorkloadByUID("c//other")
		store.Apply(state.Update{RemovedAddresses: []string{"c//other"}})
		errc := make(chan error, 1)
		go func() {
			server, _, err := ask(t, c.pods["other"], "10.70.2.10:8080")
			if err == nil && server != "10.70.2.10:8080" {
				err = errors.New("answered by " + server)
			}
			errc <- err
		}()
		time.Sleep(2 * time.Second) // the push that brings the workload, late
		if errs := store.Apply(state.Update{Addresses: []*workloadapi.Address{ztest.AsAddress(other.Workload)}}); len(errs) > 0 {
			t.Fatal(errs)
		}
		if err := <-errc; err != nil {
			t.Errorf("other's first connection: %v, want it carried once its workload arrived", err)
		}
	})
}
