//go:build linux

package app_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"istio.io/istio/pkg/workloadapi/security"

	"github.com/ztunnel-go/ztunnel/internal/state"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// TestInPod runs real pod traffic through two in-pod ztunnels on the netns bed.
func TestInPod(t *testing.T) {
	ztest.NoLeaks(t)
	c := newCluster(t)
	sleep, plain := c.pods["sleep"], c.pods["plain"]

	t.Run("same-node pod to pod over HBONE keeps identity and client IP", func(t *testing.T) {
		server, client, err := ask(t, sleep, "10.70.1.12:8080")
		if err != nil || server != "10.70.1.12:8080" || host(client) != sleep.IP {
			t.Fatalf("echo-a saw %q from %q (%v), want its own address and sleep's %s", server, client, err, sleep.IP)
		}
		if !c.nodes[1].logs.WaitFor("peer_id=spiffe://cluster.local/ns/foo/sa/sleep}: inbound: RBAC allowed conn=10.70.1.10(") {
			t.Errorf("node 1's inbound did not see sleep's identity:\n%s", c.nodes[1].logs)
		}
	})
	t.Run("cross-node pod to pod over HBONE", func(t *testing.T) {
		server, client, err := ask(t, sleep, "10.70.2.10:8080")
		if err != nil || server != "10.70.2.10:8080" || host(client) != sleep.IP {
			t.Fatalf("echo-b saw %q from %q (%v)", server, client, err)
		}
		if !c.nodes[2].logs.WaitFor("peer_ip=10.70.1.10 peer_id=spiffe://cluster.local/ns/foo/sa/sleep}") {
			t.Errorf("node 2's inbound did not see sleep's identity:\n%s", c.nodes[2].logs)
		}
	})
	t.Run("service VIP balanced across nodes", func(t *testing.T) {
		seen := map[string]int{}
		for range 30 {
			server, client, err := ask(t, sleep, "10.96.0.10:80")
			if err != nil || host(client) != sleep.IP {
				t.Fatalf("via the VIP: %q from %q (%v)", server, client, err)
			}
			seen[server]++
		}
		if seen["10.70.1.12:8080"] == 0 || seen["10.70.2.10:8080"] == 0 || len(seen) != 2 {
			t.Errorf("VIP spread %v, want both echo pods on 8080", seen)
		}
	})
	t.Run("mesh pod to a pod outside the mesh: plain TCP", func(t *testing.T) {
		server, client, err := ask(t, sleep, plain.IP+":8080")
		if err != nil || server != plain.IP+":8080" || host(client) != sleep.IP {
			t.Fatalf("plain saw %q from %q (%v)", server, client, err)
		}
	})
	t.Run("pod outside the mesh to a mesh pod: the 15006 path", func(t *testing.T) {
		server, client, err := ask(t, plain, "10.70.2.10:8080")
		if err != nil || server != "10.70.2.10:8080" || host(client) != plain.IP {
			t.Fatalf("echo-b saw %q from %q (%v), want the plain pod's %s", server, client, err, plain.IP)
		}
		if !c.nodes[2].logs.WaitFor("RBAC allowed conn=10.70.2.11(None)->10.70.2.10:8080") {
			t.Errorf("no plaintext inbound decision logged:\n%s", c.nodes[2].logs)
		}
	})
	t.Run("the seed's DENY from foo resets the connection", func(t *testing.T) {
		store := c.nodes[2].app.State()
		store.Apply(state.Update{Policies: []*security.Authorization{ztest.DenyFromNamespace("default", "httpbin", "foo")}})
		defer store.Apply(state.Update{RemovedPolicies: []string{"default/httpbin"}})
		_, _, err := ask(t, sleep, "10.70.2.10:8080")
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("sleep → echo-b under DENY: %v, want connection reset", err)
		}
		want := "RBAC rejected conn=10.70.1.10(spiffe://cluster.local/ns/foo/sa/sleep)->10.70.2.10:8080"
		if !c.nodes[2].logs.WaitFor(want) {
			t.Errorf("node 2 did not log %q", want)
		}
	})
	t.Run("live connections in the dump and bytes in the metrics", func(t *testing.T) {
		conn, err := sleep.Dial("10.70.2.10:8080")
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Read(make([]byte, 64)) // the echo server's greeting
		payload := strings.Repeat("m", 4000)
		conn.Write([]byte(payload))
		io.ReadFull(conn, make([]byte, len(payload)))
		var d struct {
			WorkloadState map[string]struct {
				State       string
				Connections struct {
					Inbound, Outbound []struct{ Src, ActualDst, Protocol string }
				}
			} `json:"workloadState"`
		}
		getJSON(t, c.nodes[1], "/config_dump", &d)
		ws := d.WorkloadState["uid-sleep"]
		if ws.State != "Up" || len(ws.Connections.Outbound) == 0 || ws.Connections.Outbound[0].ActualDst != "10.70.2.10:15008" ||
			ws.Connections.Outbound[0].Protocol != "HBONE" {
			t.Errorf("node 1's workloadState for sleep = %+v", ws)
		}
		getJSON(t, c.nodes[2], "/config_dump", &d)
		if in := d.WorkloadState["uid-echo-b"].Connections.Inbound; len(in) == 0 || !strings.HasPrefix(in[0].Src, sleep.IP+":") {
			t.Errorf("node 2's inbound connections for echo-b = %+v", in)
		}
		conn.Close()
		// client_golang writes labels sorted by name; what matters is each label's value. Earlier
		// subtests left series with the same peers but a DENY flag or the echo service.
		series := func() (float64, bool) {
			for _, l := range strings.Split(scrape(t, c.nodes[2]), "\n") {
				if strings.HasPrefix(l, "istio_tcp_received_bytes_total{") && strings.Contains(l, `reporter="destination"`) &&
					strings.Contains(l, `source_principal="spiffe://cluster.local/ns/foo/sa/sleep"`) &&
					strings.Contains(l, `source_workload_namespace="foo"`) && strings.Contains(l, `destination_workload_namespace="default"`) &&
					strings.Contains(l, `connection_security_policy="mutual_tls"`) && strings.Contains(l, `response_flags="-"`) &&
					strings.Contains(l, `destination_service="unknown"`) {
					var v float64
					fmt.Sscan(l[strings.LastIndex(l, " ")+1:], &v)
					return v, true
				}
			}
			return 0, false
		}
		for _, want := range []string{"workload_manager_active_proxy_count 3", "workload_manager_pending_proxy_count 0",
			"workload_manager_proxies_started_total 3", "process_open_fds", "go_goroutines", "istio_build{"} {
			if !strings.Contains(scrape(t, c.nodes[1]), "\n"+want) {
				t.Errorf("node 1's metrics lack %q", want)
			}
		}
		ztest.Eventually(t, "the destination's byte count", func() bool { v, ok := series(); return ok && v >= 4000 })
		// Earlier direct connections from sleep only read the greeting: every byte this
		// series counts client→server is the payload above.
		if v, _ := series(); v != 4000 {
			t.Errorf("destination received bytes = %v, want exactly the 4000 sent", v)
		}
	})
	testInPodDNS(t, c)
	t.Run("Istio's dashboard queries find their series", func(t *testing.T) {
		checkDashboard(t, [3]string{"", scrape(t, c.nodes[1]), scrape(t, c.nodes[2])})
	})
	t.Run("a pod calling ztunnel's ports directly is refused", func(t *testing.T) {
		// Port by port from the catalogue's malicious_calls matrix (BI-4): loopback and
		// the pod's own IP; admin, metrics and readiness are in the node's netns only.
		var addrs []string
		for _, host := range []string{"127.0.0.1", sleep.IP} {
			for _, port := range []string{"15001", "15006", "15008", "15080", "15000", "15020", "15021"} {
				addrs = append(addrs, host+":"+port)
			}
		}
		for _, addr := range addrs {
			conn, err := sleep.Dial(addr)
			if err != nil {
				continue // refused outright
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			conn.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
			if b, err := io.ReadAll(conn); err == nil && len(b) > 0 || strings.Contains(string(b), "HTTP") {
				t.Errorf("%s answered %q", addr, b)
			}
			conn.Close()
		}
		// Many such attempts leave ztunnel serving (descriptors and goroutines are
		// checked when the test ends).
		err := sleep.Do(func() error {
			for range 2000 {
				if c, err := net.DialTimeout("tcp", "127.0.0.1:15001", 10*time.Second); err == nil {
					c.Close()
				}
			}
			return nil
		})
		if _, _, aerr := ask(t, sleep, "10.70.2.10:8080"); err != nil || aerr != nil {
			t.Errorf("after 2,000 loop attempts: %v, %v", err, aerr)
		}
	})
	t.Run("a blackholed app port fails at the connect timeout, not never", func(t *testing.T) {
		echo := c.pods["echo-b"]
		if out, err := exec.Command("ip", "netns", "exec", echo.NS, "iptables", "-A", "INPUT", "-p", "tcp",
			"--dport", "9999", "-j", "DROP").CombinedOutput(); err != nil {
			t.Fatalf("iptables: %v\n%s", err, out)
		}
		conn, err := sleep.Dial("10.70.2.10:9999")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(30 * time.Second)) // the guard: 3× ztunnel's 10 s
		if _, err := conn.Read(make([]byte, 1)); errors.Is(err, os.ErrDeadlineExceeded) {
			t.Error("a connection to a blackholed port still hangs after 30 s")
		}
		if !c.nodes[2].logs.WaitFor("10.70.2.10:9999") {
			t.Errorf("node 2 does not log the failed upstream")
		}
	})
	t.Run("a deleted pod's connections are torn down", func(t *testing.T) {
		conn, err := c.pods["other"].Dial("10.70.2.10:8080")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		if _, err := conn.Read(buf); err != nil {
			t.Fatalf("tunnel not up: %v", err)
		}
		if ack, err := c.cnis[1].DelPod("uid-other"); err != nil || ack != "" {
			t.Fatalf("DelPod: %q %v", ack, err)
		}
		if _, err := io.ReadAll(conn); err == nil {
			// io.ReadAll returns nil at EOF: the connection ended, which is what we want.
		}
		conn.Write([]byte("x"))
		if _, err := conn.Read(buf); err == nil {
			t.Error("the deleted pod's connection still carries bytes")
		}
	})
	t.Run("after a ztunnel restart istio-cni replays and traffic recovers", func(t *testing.T) {
		c.nodes[1].stop()
		c.start(t, 1)
		server, client, err := ask(t, sleep, "10.70.2.10:8080")
		if err != nil || server != "10.70.2.10:8080" || host(client) != sleep.IP {
			t.Fatalf("after restart: %q from %q (%v)", server, client, err)
		}
	})
}

func getJSON(t *testing.T, n *ztNode, path string, v any) {
	t.Helper()
	resp, err := http.Get("http://" + n.app.Addrs().Admin[0].String() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func scrape(t *testing.T, n *ztNode) string {
	t.Helper()
	resp, err := http.Get("http://" + n.app.Addrs().Stats[0].String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
