//go:build linux

package app_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/app"
	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// The mesh of these tests: node 1 runs sleep and other (namespace foo) and echo-a; node
// 2 runs echo-b and a pod outside the mesh. echo-a and echo-b back the echo service.
const meshYAML = `
workloads:
- {uid: c//sleep, name: sleep, namespace: foo, serviceAccount: sleep, workloadIps: ["10.70.1.10"], protocol: HBONE, node: n1,
   workloadName: sleep, canonicalName: sleep, canonicalRevision: v1}
- {uid: c//other, name: other, namespace: foo, serviceAccount: other, workloadIps: ["10.70.1.11"], protocol: HBONE, node: n1}
- {uid: c//echo-a, name: echo-a, namespace: default, serviceAccount: echo, workloadIps: ["10.70.1.12"], protocol: HBONE, node: n1,
   workloadName: echo, canonicalName: echo, canonicalRevision: v1,
   services: {"default/echo.default.svc.cluster.local": {80: 8080}}}
- {uid: c//echo-b, name: echo-b, namespace: default, serviceAccount: echo, workloadIps: ["10.70.2.10"], protocol: HBONE, node: n2,
   workloadName: echo, canonicalName: echo, canonicalRevision: v1,
   services: {"default/echo.default.svc.cluster.local": {80: 8080}}}
services:
- {name: echo, namespace: default, hostname: echo.default.svc.cluster.local, vips: ["/10.96.0.10"], ports: {80: 8080}}
- {name: httpbin, namespace: default, hostname: httpbin.default.svc.cluster.local, vips: ["/10.96.0.20"], ports: {8000: 8080}}
`

type cluster struct {
	pods     map[string]*ztest.BedPod
	upstream *ztest.FakeDNS // kube-dns's place: node 1's bridge address, port 53
	ca       *ztest.FakeCA
	cnis     [3]*ztest.FakeCNI // by node index
	nodes    [3]*ztNode
	nodeNS   [3]string // node i's netns path
	dir      string
}

type ztNode struct {
	app  *app.App
	logs *ztest.LogBuffer
	stop func()
}

func newCluster(t *testing.T) *cluster {
	c := newClusterBed(t)
	c.start(t, 1)
	c.start(t, 2)
	return c
}

// newClusterBed builds the nodes, pods, CA and istio-cni servers, with no ztunnel yet.
func newClusterBed(t *testing.T) *cluster {
	bed := ztest.NewBed(t)
	n1, n2 := bed.Node(1), bed.Node(2)
	bed.Link(n1, n2)
	c := &cluster{pods: map[string]*ztest.BedPod{}, ca: ztest.NewFakeCA(t), dir: t.TempDir()}
	for _, p := range []*ztest.BedPod{n1.Pod("sleep", true), n1.Pod("other", true), n1.Pod("echo-a", true),
		n2.Pod("echo-b", true), n2.Pod("plain", false)} {
		c.pods[p.Name] = p
	}
	for _, name := range []string{"echo-a", "echo-b", "plain"} {
		c.pods[name].ServeWhoami(t, 8080)
	}
	c.upstream = n1.ServeDNS(t, upstreamIP, map[string][]string{"db.corp.example": {"10.70.2.11"}})
	for name, p := range c.pods {
		p.Resolv(podNamespace(name), upstreamIP)
	}
	for i := 1; i <= 2; i++ {
		c.cnis[i] = ztest.NewFakeCNI(t, filepath.Join(c.dir, fmt.Sprintf("zds-%d.sock", i)))
	}
	for name, sa := range map[string]string{"sleep": "sleep", "other": "other", "echo-a": "echo", "echo-b": "echo"} {
		p := c.pods[name]
		c.cnis[p.Node.Idx].AddPod("uid-"+name, podNamespace(name), name, sa, p.Path)
	}
	c.nodeNS = [3]string{"", "/var/run/netns/" + n1.NS, "/var/run/netns/" + n2.NS}
	// ztunnel's own resolv.conf, as a ztunnel pod's: kube-dns and the istio-system list.
	conf := "nameserver " + upstreamIP + "\nsearch istio-system.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n"
	if err := os.WriteFile(filepath.Join(c.dir, "resolv.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// podNamespace is the Kubernetes namespace of the bed's pods.
func podNamespace(pod string) string {
	if pod == "sleep" || pod == "other" {
		return "foo"
	}
	return "default"
}

// env is node i's ztunnel environment, with the CA at caAddress.
func (c *cluster) env(i int, caAddress string) []string {
	return []string{"INPOD_ENABLED=true", "INPOD_UDS=" + c.cnis[i].Path, "LOCAL_XDS=" + meshYAML, "XDS_ADDRESS=",
		"CA_ADDRESS=" + caAddress, "CA_ROOT_CA=" + c.ca.ServePEM, "AUTH_TOKEN=token",
		fmt.Sprintf("NODE_NAME=n%d", i), "IPV6_ENABLED=false", "RUST_LOG=debug"}
}

// start runs node i's ztunnel in in-pod mode, with the shared CA, until it is ready;
// extra environment variables come last and win.
func (c *cluster) start(t *testing.T, i int, extra ...string) {
	t.Helper()
	c.nodes[i] = startZtunnel(t, i, append(c.env(i, c.ca.Address), extra...), func(cfg *config.Config) {
		cfg.DNS.ResolvConf = filepath.Join(c.dir, "resolv.conf")
	})
}

// startZtunnel runs a ztunnel with env (and tweak applied to its config) until ready,
// its HTTP servers on loopback ports of their own.
func startZtunnel(t *testing.T, idx int, env []string, tweak func(*config.Config)) *ztNode {
	t.Helper()
	cfg, err := config.Load(config.Source{Env: env, FileExists: func(string) bool { return false }})
	if err != nil {
		t.Fatal(err)
	}
	local := netip.MustParseAddrPort("127.0.0.1:0")
	cfg.Addrs.Admin, cfg.Addrs.Stats, cfg.Addrs.Readiness = []netip.AddrPort{local}, local, local
	if tweak != nil {
		tweak(cfg)
	}
	logs := &ztest.LogBuffer{}
	log, levels, _ := logging.New(logs, "plain", "debug")
	a := app.New(cfg, log, levels)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := a.Run(ctx); err != nil {
			t.Errorf("node %d: %v", idx, err)
		}
	})
	n := &ztNode{app: a, logs: logs, stop: sync.OnceFunc(func() { cancel(); wg.Wait() })}
	t.Cleanup(n.stop)
	<-a.Started()
	ztest.Eventually(t, fmt.Sprintf("node %d ready", idx), func() bool {
		resp, err := http.Get("http://" + a.Addrs().Readiness[0].String() + "/healthz/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	http.DefaultClient.CloseIdleConnections()
	return n
}

// ask connects from pod to addr and returns the app's "<server> <client>" line.
func ask(t *testing.T, from *ztest.BedPod, addr string) (server, client string, err error) {
	t.Helper()
	c, err := from.Dial(addr)
	if err != nil {
		return "", "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", "", err
	}
	server, client, _ = strings.Cut(strings.TrimSpace(line), " ")
	return server, client, nil
}

func host(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
