//go:build linux

package bench

import (
	"bufio"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/netns"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// The bench cluster: node 1 has the client pods, node 2 the server pods; cz and sz are
// in the mesh (captured by istio-cni's rules, served by ztunnel), cp and sp are not
// (the baselines' apps). Each server pod runs iperf3 on 5201 and an echo app on 8080.
// The baselines' proxies listen on the nodes' bridge addresses.
const n1IP, n2IP = "10.70.1.1", "10.70.2.1"

const meshYAML = `
workloads:
- {uid: c//cz, name: cz, namespace: bench, serviceAccount: client, workloadIps: ["%s"], protocol: HBONE, node: n1,
   workloadName: client, canonicalName: client}
- {uid: c//sz, name: sz, namespace: bench, serviceAccount: server, workloadIps: ["%s"], protocol: HBONE, node: n2,
   workloadName: server, canonicalName: server}
services:
- {name: echo, namespace: bench, hostname: echo.bench.svc.cluster.local, vips: ["/10.96.0.50"]}
`

// scenario is one way of carrying the client's bytes to the server.
type scenario struct {
	name     string
	clientNS string                     // the pod the load runs in
	iperf    string                     // host:port reaching iperf3
	echo     string                     // host:port reaching the echo app
	cpu      func() float64             // CPU seconds the proxies have used so far; nil for none
	rss      func() float64             // bytes of memory the proxies hold now; nil for none
	rssOf    func(field string) float64 // one /proc/PID/status field of it ("RssAnon:")
}

type harness struct {
	dir       string
	loadgen   string
	scenarios []scenario
	ztunnelNS []string // the nodes' netns the ztunnels run in, for their admin ports
	dns       []dnsScenario
}

func newHarness(t *testing.T) *harness {
	bed := ztest.NewBed(t)
	n1, n2 := bed.Node(1), bed.Node(2)
	bed.Link(n1, n2)
	cz, cp, sz, sp := n1.Pod("cz", true), n1.Pod("cp", false), n2.Pod("sz", true), n2.Pod("sp", false)
	spIP := sp.IP
	for _, p := range []*ztest.BedPod{cz, cp, sz, sp} {
		widenPorts(t, p.NS)
	}
	h := &harness{dir: t.TempDir()}
	h.loadgen = h.build(t, "./loadgen")
	pipe := h.build(t, "./mtlspipe")
	// One iperf3 server per scenario: a test a proxy leaves hanging keeps its server
	// busy, and must not spoil the other scenarios' runs.
	for _, port := range []string{"5201", "5202", "5203"} {
		h.daemon(t, sp.NS, "", "iperf3", "-s", "-p", port, "--idle-timeout", "20")
	}
	h.daemon(t, sz.NS, "", "iperf3", "-s", "-p", "5201", "--idle-timeout", "20")
	for _, p := range []*ztest.BedPod{sp, sz} {
		h.daemon(t, p.NS, "ready", h.loadgen, "-mode", "echo", "-listen", ":8080")
	}
	certs := h.certs(t)

	h.scenarios = append(h.scenarios, scenario{name: "direct", clientNS: cp.NS, iperf: spIP + ":5201", echo: spIP + ":8080"})

	c := h.daemon(t, n1.NS, "ready", pipe, append(certs["client"], "-mode", "client",
		"-route", n1IP+":7000="+n2IP+":7001", "-route", n1IP+":7080="+n2IP+":7081")...)
	s := h.daemon(t, n2.NS, "ready", pipe, append(certs["server"], "-mode", "server",
		"-route", n2IP+":7001="+spIP+":5202", "-route", n2IP+":7081="+spIP+":8080")...)
	h.scenarios = append(h.scenarios, scenario{name: "mtls-pipe", clientNS: cp.NS, iperf: n1IP + ":7000", echo: n1IP + ":7080",
		cpu: procCPU(c, s), rss: procRSS(c, s), rssOf: procStatus(c, s)})

	if _, err := exec.LookPath("stunnel4"); err == nil {
		c, s := h.stunnel(t, n1.NS, "client", certs, spIP), h.stunnel(t, n2.NS, "server", certs, spIP)
		h.scenarios = append(h.scenarios, scenario{name: "stunnel", clientNS: cp.NS, iperf: n1IP + ":7200", echo: n1IP + ":7280",
			cpu: procCPU(c, s), rss: procRSS(c, s), rssOf: procStatus(c, s)})
	} else {
		t.Log("stunnel4 is not installed: its column is left out (bench/run installs it)")
	}

	h.setupDNS(t, n1, n2, cp, cz)
	z := h.ztunnels(t, [2]*ztest.BedNode{n1, n2}, [2]*ztest.BedPod{cz, sz})
	h.scenarios = append(h.scenarios, scenario{name: "ztunnel", clientNS: cz.NS, iperf: sz.IP + ":5201", echo: sz.IP + ":8080",
		cpu: procCPU(z...), rss: procRSS(z...), rssOf: procStatus(z...)})
	return h
}

// widenPorts lets a pod open the connection phases' ~25,000 connections a round (the
// c=1 and c=8 loops, then 10,000 at 1,000/s), whose closed ends wait 60 s in
// TIME_WAIT: with Linux's default 28,000 ephemeral ports and no reuse, the direct
// baseline ran out, its SYNs waited for retransmits, and its first bytes took seconds.
// The sysctls are the namespace's own; the host's are not touched.
func widenPorts(t *testing.T, ns string) {
	const script = "echo 1024 65535 > /proc/sys/net/ipv4/ip_local_port_range && echo 1 > /proc/sys/net/ipv4/tcp_tw_reuse"
	if _, err := inNS(ns, 5*time.Second, "sh", "-c", script); err != nil {
		t.Fatalf("widening %s's ports: %v", ns, err)
	}
}

// build compiles one of the bench's programs as deploy/image builds ztunnel: static,
// stripped, trimmed, without grpc's tracing (deploy/image's buildTags). A cgo build maps libc and ld.so too, and on kernels that map whole
// page-cache folios (6.18 on ext4) RssFile is about the size of every mapped file, so
// the memory rows would measure a binary nobody ships. GOAMD64 and GOFLAGS (e.g.
// -pgo=off) pass through from the environment.
func (h *harness) build(t *testing.T, pkg string) string {
	out := filepath.Join(h.dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-tags=grpcnotrace", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// daemon runs a program inside a network namespace until the test ends; when ready is
// set it waits for that line on the program's stdout.
func (h *harness) daemon(t *testing.T, ns, ready, prog string, args ...string) int {
	return h.daemonEnv(t, ns, ready, nil, prog, args...)
}

// daemonEnv is daemon with an environment (nil: this process's).
func (h *harness) daemonEnv(t *testing.T, ns, ready string, env []string, prog string, args ...string) int {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, prog}, args...)...)
	if env != nil {
		cmd.Env = append(env, "PATH="+os.Getenv("PATH"))
	}
	logFile, err := os.CreateTemp(h.dir, filepath.Base(prog)+"-*.log") // beside the run's other files
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	var stdout io.Reader
	if ready == "" {
		cmd.Stdout = logFile // nobody reads it: a pipe would fill and stop the program
	} else {
		stdout, _ = cmd.StdoutPipe()
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logFile.Close() })
	if ready == "" {
		time.Sleep(200 * time.Millisecond) // iperf3 and ztunnel say nothing useful when listening
		return cmd.Process.Pid
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != ready {
		t.Fatalf("%s did not start: %q %v", prog, line, err)
	}
	return cmd.Process.Pid
}

// certs issues the baselines' client and server certificates from one root, as files,
// and returns each side's mtlspipe flags.
func (h *harness) certs(t *testing.T) map[string][]string {
	root, err := ca.New("cluster.local", 24*time.Hour, nil)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(h.dir, "ca.pem")
	os.WriteFile(caFile, []byte(root.RootPEM()), 0o600)
	out := map[string][]string{}
	for _, side := range []string{"client", "server"} {
		key, _ := ca.NewKey()
		leaf, err := root.Issue(ca.LeafTemplate(identity.New("cluster.local", "bench", side), time.Now(), 24*time.Hour), key.Public())
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalECPrivateKey(key)
		certFile, keyFile := filepath.Join(h.dir, side+".pem"), filepath.Join(h.dir, side+"-key.pem")
		os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw}), 0o600)
		os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600)
		out[side] = []string{"-cert", certFile, "-key", keyFile, "-ca", caFile}
	}
	return out
}

// stunnel runs stunnel4 as one end of the same two routes as the mTLS pipe.
func (h *harness) stunnel(t *testing.T, ns, side string, certs map[string][]string, spIP string) int {
	f := certs[side]
	// TIMEOUTclose 0: do not wait for the peer's close_notify, or a finished iperf3 run
	// hangs for a minute.
	conf := fmt.Sprintf("foreground = yes\npid =\nsyslog = no\ndebug = 3\nTIMEOUTclose = 0\nsslVersionMin = TLSv1.3\ncert = %s\nkey = %s\nCAfile = %s\nverifyChain = yes\n",
		f[1], f[3], f[5])
	routes := [][2]string{{n1IP + ":7200", n2IP + ":7201"}, {n1IP + ":7280", n2IP + ":7281"}}
	if side == "server" {
		conf += "requireCert = yes\n"
		routes = [][2]string{{n2IP + ":7201", spIP + ":5203"}, {n2IP + ":7281", spIP + ":8080"}}
	}
	for i, r := range routes {
		conf += fmt.Sprintf("[r%d]\naccept = %s\nconnect = %s\n", i, r[0], r[1])
		if side == "client" {
			conf += "client = yes\n"
		}
	}
	file := filepath.Join(h.dir, "stunnel-"+side+".conf")
	os.WriteFile(file, []byte(conf), 0o600)
	pid := h.daemon(t, ns, "", "stunnel4", file)
	return pid
}

// ztunnels runs the two nodes' ztunnels as the real binary, each in its node's
// netns, in in-pod mode: each is handed its mesh pod by a fake istio-cni and gets its
// certificates from a fake Istio CA served inside that netns. As their own processes
// they are measured as the baselines are (/proc), one Go runtime each, like the pipe's
// two processes. It returns their pids.
func (h *harness) ztunnels(t *testing.T, nodes [2]*ztest.BedNode, pods [2]*ztest.BedPod) []int {
	bin := h.build(t, "../cmd/ztunnel")
	fca := ztest.NewFakeCA(t)
	var pids []int
	for i, pod := range pods {
		cni := ztest.NewFakeCNI(t, filepath.Join(h.dir, fmt.Sprintf("zds-%d.sock", i+1)))
		sa := map[int]string{0: "client", 1: "server"}[i]
		cni.AddPod("uid-"+pod.Name, "bench", pod.Name, sa, pod.Path)
		env := []string{"INPOD_ENABLED=true", "INPOD_UDS=" + cni.Path, "LOCAL_XDS=" + fmt.Sprintf(meshYAML, pods[0].IP, pods[1].IP),
			"XDS_ADDRESS=", "CA_ADDRESS=" + fca.ListenIn(t, "/var/run/netns/"+nodes[i].NS), "CA_ROOT_CA=" + fca.ServePEM,
			"AUTH_TOKEN=token", fmt.Sprintf("NODE_NAME=n%d", i+1), "IPV6_ENABLED=false"} // Rust's default log: info, access log on
		// ZTUNNEL_BENCH_ZTUNNEL_ENV="K=V …" tries settings, e.g. ZTUNNEL_WORKER_THREADS=1.
		env = append(env, strings.Fields(os.Getenv("ZTUNNEL_BENCH_ZTUNNEL_ENV"))...)
		pid := h.daemonEnv(t, nodes[i].NS, "", env, bin)
		h.ztunnelNS = append(h.ztunnelNS, nodes[i].NS)
		waitReady(t, nodes[i].NS)
		pids = append(pids, pid)
	}
	return pids
}

// waitReady polls the ztunnel's readiness port in its node's netns.
func waitReady(t *testing.T, ns string) {
	for range 1000 {
		if _, code, err := nodeGet(ns, "127.0.0.1:15021", "/healthz/ready", time.Second); err == nil && code == 200 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the ztunnel in %s did not become ready", ns)
}

// nodeGet fetches path from addr inside a node's netns (the socket is made there; an
// http.Client would dial from another thread, outside it).
func nodeGet(ns, addr, path string, timeout time.Duration) ([]byte, int, error) {
	h, err := netns.Open("/var/run/netns/" + ns)
	if err != nil {
		return nil, 0, err
	}
	defer h.Close()
	var c net.Conn
	if err := h.Do(func() (err error) { c, err = net.DialTimeout("tcp", addr, timeout); return err }); err != nil {
		return nil, 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return body, resp.StatusCode, err
}
