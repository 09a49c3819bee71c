//go:build linux

package chart_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/xds"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// kubeDNS is where the bed's pods find kube-dns, and istiod's Service: node 1's bridge.
const kubeDNS = "10.70.1.1"

// bed is a two-node cluster for ztunnels started as the chart's pod: istiod (xDS and
// CA) behind its in-cluster name, kube-dns, istio-cni on each node, and two mesh apps
// per node. Node 1: sleep (10.70.1.10) and echo-a (.11); node 2: curl (10.70.2.10) and
// echo-b (.11). The ztunnel pods come after them on each node: zt-a, zt-b.
type bed struct {
	istiod *ztest.FakeIstiod
	nodes  [3]*ztest.BedNode
	cnis   [3]*ztest.FakeCNI
	cniDir [3]string // the node's /var/run/ztunnel, the chart's hostPath
	pods   map[string]*ztest.BedPod
	dir    string
	// podman, when set, runs the chart's container instead of the test's own init: the
	// real runtime, on the image as `podman load` reads it.
	podman      *ztest.Podman
	podmanImage string
}

// runtimeEnv names the container runtime of the chart tests: unset, the test binary's
// own init (ztest.ContainerInit); "podman", podman with runc (.ci/run sets it for one
// run of TestChartPod).
const runtimeEnv = "ZTUNNEL_TEST_RUNTIME"

// apps are the mesh pods: name → node, namespace, service account.
var apps = []struct {
	name, ns, sa string
	node         int
}{{"sleep", "foo", "sleep", 1}, {"echo-a", "default", "echo", 1}, {"curl", "foo", "curl", 2}, {"echo-b", "default", "echo", 2}}

func newBed(t *testing.T) *bed {
	nb := ztest.NewBed(t)
	b := &bed{pods: map[string]*ztest.BedPod{}, dir: t.TempDir()}
	switch rt := os.Getenv(runtimeEnv); rt {
	case "":
	case "podman":
		image(t)
		b.podman = ztest.NewPodman(t)
		b.podmanImage = b.podman.Load(t, built.tarball)
	default:
		t.Fatalf("%s=%q: want podman, or unset for the test's own runtime", runtimeEnv, rt)
	}
	b.nodes[1], b.nodes[2] = nb.Node(1), nb.Node(2)
	nb.Link(b.nodes[1], b.nodes[2])
	b.istiod = ztest.NewFakeIstiod(t, ztest.NewFakeXDS(t, false), ztest.NewFakeCA(t))
	b.istiod.ServeIn(t, "/var/run/netns/"+b.nodes[1].NS, kubeDNS+":15012")
	b.nodes[1].ServeDNS(t, kubeDNS, map[string][]string{ztest.IstiodName + ".cluster.local": {kubeDNS}})
	for i := 1; i <= 2; i++ {
		b.cniDir[i] = filepath.Join(b.dir, fmt.Sprintf("node-%d-ztunnel", i))
		if err := os.Mkdir(b.cniDir[i], 0o755); err != nil {
			t.Fatal(err)
		}
		b.cnis[i] = ztest.NewFakeCNI(t, filepath.Join(b.cniDir[i], "ztunnel.sock"))
	}
	for _, a := range apps {
		p := b.nodes[a.node].Pod(a.name, true)
		b.pods[a.name] = p
		w := ztest.Workload(a.ns, a.name, p.IP)
		w.ServiceAccount, w.Node = a.sa, fmt.Sprintf("node-%d", a.node)
		b.istiod.XDS.Set(xds.AddressType, w.Uid, ztest.AsAddress(w))
		b.cnis[a.node].AddPod("uid-"+a.name, a.ns, a.name, a.sa, p.Path)
		if strings.HasPrefix(a.name, "echo") {
			p.ServeWhoami(t, 8080)
		}
	}
	for i := 1; i <= 2; i++ {
		for _, z := range []string{"zt-a", "zt-b"} {
			b.pods[fmt.Sprintf("%s-%d", z, i)] = b.nodes[i].Pod(z, false)
		}
	}
	return b
}

// startZtunnel starts the chart's container in ztunnel pod zt (on node i) as the
// kubelet would: the rendered env with its fields filled in, the image's entrypoint and
// the rendered args, the volumes at their rendered paths, the security context.
func (b *bed) startZtunnel(t *testing.T, spec podSpec, i int, zt *ztest.BedPod, cpuLimit string) *ztest.Running {
	t.Helper()
	rootfs, entrypoint := image(t)
	c := spec.Containers[0]
	sc := c.SecurityContext
	if sc.RunAsUser != 0 || !sc.ReadOnlyRootFilesystem || strings.Join(sc.Capabilities.Drop, ",") != "ALL" {
		t.Fatalf("the chart's security context changed: %+v", sc)
	}
	fields := podFields(zt.Name, fmt.Sprintf("node-%d", i), zt.IP)
	ct := ztest.Container{
		Rootfs: rootfs, Args: append(append([]string(nil), entrypoint...), c.Args...),
		Env:    kubeletEnv(c, fields, cpuLimit, "1"), // requests.cpu 200m, rounded up by divisor 1
		Mounts: append(b.kubeletFiles(t, zt), b.volumeMounts(t, spec, i)...), Gid: sc.RunAsGroup, Caps: sc.Capabilities.Add,
	}
	if b.podman != nil {
		return b.podman.Start(t, zt, b.podmanImage, ct)
	}
	return zt.StartContainer(t, ct)
}

// volumeMounts are the container's mounts, each backed by what its volume would be.
func (b *bed) volumeMounts(t *testing.T, spec podSpec, node int) []ztest.Mount {
	t.Helper()
	var out []ztest.Mount
	for _, m := range spec.Containers[0].VolumeMounts {
		var host string
		readOnly := m.ReadOnly
		for _, v := range spec.Volumes {
			if v.Name == m.Name {
				host = b.volume(t, v, node)
				// The kubelet mounts API data (ConfigMaps, projected tokens) read-only.
				readOnly = readOnly || v.ConfigMap != nil || v.Projected != nil
			}
		}
		if host == "" {
			t.Fatalf("volume %s, mounted at %s, is not one this test can provide", m.Name, m.MountPath)
		}
		// A volume nested in an earlier, read-only one (the CRL inside root-cert.pem's
		// directory) needs its mount point made in that volume, as a kubelet's
		// volume directory would have it; the runtime cannot create it there.
		for _, parent := range out {
			if rel, ok := strings.CutPrefix(m.MountPath, parent.Path+"/"); ok {
				if err := os.MkdirAll(filepath.Join(parent.Host, rel), 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}
		out = append(out, ztest.Mount{Host: host, Path: m.MountPath, ReadOnly: readOnly})
	}
	return out
}

// volume gives a volume's contents as the kubelet would: the root ConfigMap with the
// mesh root, the projected token, istio-cni's socket directory on the node, an
// emptyDir, and the optional CRL ConfigMap as absent (empty).
func (b *bed) volume(t *testing.T, v volume, node int) string {
	dir := t.TempDir()
	switch {
	case v.ConfigMap != nil && v.ConfigMap.Name == "istio-ca-root-cert":
		writeIn(t, dir, "root-cert.pem", b.istiod.RootPEM)
	case v.ConfigMap != nil && v.ConfigMap.Name == "istio-ca-crl" && v.ConfigMap.Optional:
	case v.Projected != nil && len(v.Projected.Sources) == 1 && v.Projected.Sources[0].ClusterTrustBundle != nil:
		writeIn(t, dir, v.Projected.Sources[0].ClusterTrustBundle.Path, b.istiod.RootPEM)
	case v.Projected != nil && len(v.Projected.Sources) == 1 && v.Projected.Sources[0].ServiceAccountToken != nil:
		writeIn(t, dir, v.Projected.Sources[0].ServiceAccountToken.Path, "a-projected-token")
	case v.HostPath != nil && v.HostPath.Path == "/var/run/ztunnel":
		return b.cniDir[node]
	case v.EmptyDir != nil:
	default:
		return ""
	}
	return dir
}

// kubeletFiles are the files the kubelet mounts into every container: the pod's hosts
// file, and resolv.conf for the ClusterFirst DNS policy (kube-dns and the search list
// of istio-system).
func (b *bed) kubeletFiles(t *testing.T, zt *ztest.BedPod) []ztest.Mount {
	dir := t.TempDir()
	writeIn(t, dir, "hosts", fmt.Sprintf("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", zt.IP, zt.Name))
	writeIn(t, dir, "resolv.conf", "search istio-system.svc.cluster.local svc.cluster.local cluster.local\nnameserver "+kubeDNS+"\noptions ndots:5\n")
	writeIn(t, dir, "hostname", zt.Name+"\n")
	var out []ztest.Mount
	for _, f := range []string{"hosts", "resolv.conf", "hostname"} {
		out = append(out, ztest.Mount{Host: filepath.Join(dir, f), Path: "/etc/" + f})
	}
	return out
}

func writeIn(t *testing.T, dir, name, content string) {
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// get is an HTTP GET of a ztunnel pod's port made from where the kubelet (or Prometheus)
// stands, here the pod's node; host is the pod's IP, or 127.0.0.1 to ask from inside
// the pod (the admin port).
func get(from interface{ Do(func() error) error }, host string, port int, path string) (int, string, error) {
	var conn net.Conn
	err := from.Do(func() (err error) {
		conn, err = net.DialTimeout("tcp", fmt.Sprintf("%s:%d", host, port), 5*time.Second)
		return err
	})
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", path, host, port)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitReady probes the chart's readiness probe as the kubelet does until it passes; a
// container that exits first fails the test with its output.
func waitReady(t *testing.T, spec podSpec, node *ztest.BedNode, zt *ztest.BedPod, r *ztest.Running) {
	t.Helper()
	probe := spec.Containers[0].ReadinessProbe.HTTPGet
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, _, err := get(node, zt.IP, probe.Port, probe.Path)
		if err == nil && code == http.StatusOK {
			return
		}
		select {
		case <-r.Done():
			t.Fatalf("%s exited before it was ready:\n%s", zt.Name, r.Output())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready on :%d%s after 60 s (last: %d %v):\n%s", zt.Name, probe.Port, probe.Path, code, err, r.Output())
		}
	}
}
