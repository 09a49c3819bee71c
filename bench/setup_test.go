//go:build linux

package bench

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/app"
	"github.com/ztunnel-go/ztunnel/internal/ca"
	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/logging"
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
`

// scenario is one way of carrying the client's bytes to the server.
type scenario struct {
	name     string
	clientNS string         // the pod the load runs in
	iperf    string         // host:port reaching iperf3
	echo     string         // host:port reaching the echo app
	cpu      func() float64 // CPU seconds the proxies have used so far; nil for none
	rss      func() float64 // bytes of memory the proxies hold now; nil for none
}

type harness struct {
	dir       string
	loadgen   string
	scenarios []scenario
}

func newHarness(t *testing.T) *harness {
	bed := ztest.NewBed(t)
	n1, n2 := bed.Node(1), bed.Node(2)
	bed.Link(n1, n2)
	cz, cp, sz, sp := n1.Pod("cz", true), n1.Pod("cp", false), n2.Pod("sz", true), n2.Pod("sp", false)
	spIP := sp.IP
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
		cpu: procCPU(c, s), rss: procRSS(c, s)})

	if _, err := exec.LookPath("stunnel4"); err == nil {
		c, s := h.stunnel(t, n1.NS, "client", certs, spIP), h.stunnel(t, n2.NS, "server", certs, spIP)
		h.scenarios = append(h.scenarios, scenario{name: "stunnel", clientNS: cp.NS, iperf: n1IP + ":7200", echo: n1IP + ":7280",
			cpu: procCPU(c, s), rss: procRSS(c, s)})
	} else {
		t.Log("stunnel4 is not installed: its column is left out (bench/run installs it)")
	}

	ztunnels(t, cz, sz)
	h.scenarios = append(h.scenarios, scenario{name: "ztunnel", clientNS: cz.NS, iperf: sz.IP + ":5201", echo: sz.IP + ":8080",
		cpu: selfCPU, rss: selfRSS})
	return h
}

// build compiles one of the bench's programs.
func (h *harness) build(t *testing.T, pkg string) string {
	out := filepath.Join(h.dir, filepath.Base(pkg))
	if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// daemon runs a program inside a network namespace until the test ends; when ready is
// set it waits for that line on the program's stdout.
func (h *harness) daemon(t *testing.T, ns, ready, prog string, args ...string) int {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, prog}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	logFile, err := os.CreateTemp(h.dir, filepath.Base(prog)+"-*.log") // beside the run's other files
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logFile.Close() })
	if ready == "" {
		time.Sleep(200 * time.Millisecond) // iperf3 says nothing useful when listening
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

// ztunnels runs the two nodes' ztunnels in this process, in in-pod mode, each handed
// its mesh pod by a fake istio-cni, with certificates from a fake Istio CA.
func ztunnels(t *testing.T, cz, sz *ztest.BedPod) {
	fca := ztest.NewFakeCA(t)
	dir := t.TempDir()
	for i, pod := range []*ztest.BedPod{cz, sz} {
		cni := ztest.NewFakeCNI(t, filepath.Join(dir, fmt.Sprintf("zds-%d.sock", i+1)))
		sa := map[int]string{0: "client", 1: "server"}[i]
		cni.AddPod("uid-"+pod.Name, "bench", pod.Name, sa, pod.Path)
		env := []string{"INPOD_ENABLED=true", "INPOD_UDS=" + cni.Path, "LOCAL_XDS=" + fmt.Sprintf(meshYAML, cz.IP, sz.IP), "XDS_ADDRESS=",
			"CA_ADDRESS=" + fca.Address, "CA_ROOT_CA=" + fca.ServePEM, "AUTH_TOKEN=token",
			fmt.Sprintf("NODE_NAME=n%d", i+1), "IPV6_ENABLED=false"}
		cfg, err := config.Load(config.Source{Env: env, FileExists: func(string) bool { return false }})
		if err != nil {
			t.Fatal(err)
		}
		local := netip.MustParseAddrPort("127.0.0.1:0")
		cfg.Addrs.Admin, cfg.Addrs.Stats, cfg.Addrs.Readiness = []netip.AddrPort{local}, local, local
		logFile, err := os.Create(filepath.Join(dir, fmt.Sprintf("ztunnel-%d.log", i+1)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { logFile.Close() })
		log, levels, _ := logging.New(logFile, "plain", "info") // Rust's default: info, access log on
		a := app.New(cfg, log, levels)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { a.Run(ctx) })
		t.Cleanup(func() { cancel(); wg.Wait() })
		<-a.Started()
		ready(t, a)
	}
}

func ready(t *testing.T, a *app.App) {
	for range 500 {
		resp, err := http.Get("http://" + a.Addrs().Readiness[0].String() + "/healthz/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("ztunnel did not become ready")
}
