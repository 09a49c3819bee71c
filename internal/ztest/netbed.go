//go:build linux

package ztest

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/netns"
)

// Bed is a small cluster made of network namespaces: nodes (a bridge each, linked to
// each other) and pods (a veth on their node's bridge). Mesh pods get the iptables rules
// istio-cni installs for in-pod mode. Only addresses the bed assigns are used, and no
// namespace has a route out. Building it needs root, ip and iptables.
type Bed struct {
	t     testing.TB
	id    string
	nss   []string // namespaces to delete, in creation order
	links int      // links made so far: link k is 10.71.k.0/30
}

// NewBed starts a bed that is torn down with the test. Not root: the test is skipped.
func NewBed(t testing.TB) *Bed {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the netns test bed needs root (network namespaces, iptables); CI runs it as root")
	}
	for _, tool := range []string{"ip", "iptables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: install iproute2 and iptables (.ci/run does)", tool)
		}
	}
	b := &Bed{t: t, id: fmt.Sprintf("zt%d", os.Getpid()%100000)}
	t.Cleanup(func() {
		for i := len(b.nss) - 1; i >= 0; i-- {
			exec.Command("ip", "netns", "del", b.nss[i]).Run()
		}
	})
	return b
}

func (b *Bed) run(args ...string) {
	b.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		b.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func (b *Bed) addNS(name string) {
	b.run("ip", "netns", "add", name)
	b.nss = append(b.nss, name)
	b.run("ip", "-n", name, "link", "set", "lo", "up")
}

// BedNode is a node: its pods are 10.70.<idx>.0/24 behind the bridge at .1.
type BedNode struct {
	b    *Bed
	Idx  int
	NS   string
	pods int
}

// Node adds node idx (1..9).
func (b *Bed) Node(idx int) *BedNode {
	n := &BedNode{b: b, Idx: idx, NS: fmt.Sprintf("%s-n%d", b.id, idx)}
	b.addNS(n.NS)
	b.run("ip", "-n", n.NS, "link", "add", "br0", "type", "bridge")
	b.run("ip", "-n", n.NS, "addr", "add", fmt.Sprintf("10.70.%d.1/24", idx), "dev", "br0")
	b.run("ip", "-n", n.NS, "link", "set", "br0", "up")
	b.run("ip", "netns", "exec", n.NS, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	return n
}

// Do runs fn with the calling thread in the node's namespace (to open sockets there,
// as a node's own services would: kube-dns, say).
func (n *BedNode) Do(fn func() error) error {
	ns, err := netns.Open("/var/run/netns/" + n.NS)
	if err != nil {
		return err
	}
	defer ns.Close()
	return ns.Do(fn)
}

// Dial connects from the node's namespace, as a node's own process would.
func (n *BedNode) Dial(addr string) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() (err error) { c, err = net.DialTimeout("tcp", addr, 10*time.Second); return err })
	return c, err
}

// ServeDNS runs a FakeDNS on ip:53 (UDP and TCP) inside the node's namespace, as a
// cluster's kube-dns: ip must be one of the node's addresses.
func (n *BedNode) ServeDNS(t testing.TB, ip string, records map[string][]string) *FakeDNS {
	t.Helper()
	var pc net.PacketConn
	var l net.Listener
	err := n.Do(func() (err error) {
		if pc, err = net.ListenPacket("udp", ip+":53"); err != nil {
			return err
		}
		if l, err = net.Listen("tcp", ip+":53"); err != nil {
			pc.Close()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ServeFakeDNS(t, pc, l, records)
}

// Link joins two nodes with a veth pair and routes each one's pods via the other, and
// only those: a node linked to several (a gateway between networks) does not make its
// peers reach each other.
func (b *Bed) Link(x, y *BedNode) {
	k := b.links
	b.links++
	dev := fmt.Sprintf("peer%d", k)
	b.run("ip", "-n", x.NS, "link", "add", dev, "type", "veth", "peer", "name", dev, "netns", y.NS)
	for i, n := range []*BedNode{x, y} {
		other := []*BedNode{y, x}[i]
		b.run("ip", "-n", n.NS, "addr", "add", fmt.Sprintf("10.71.%d.%d/30", k, i+1), "dev", dev)
		b.run("ip", "-n", n.NS, "link", "set", dev, "up")
		b.run("ip", "-n", n.NS, "route", "add", fmt.Sprintf("10.70.%d.0/24", other.Idx), "via", fmt.Sprintf("10.71.%d.%d", k, 2-i))
	}
}

// BedPod is a pod: one interface, eth0, with its address.
type BedPod struct {
	Node *BedNode
	Name string
	NS   string
	IP   string
	Path string // the namespace file, as istio-cni hands it over
}

// Pod adds a pod; a mesh pod gets istio-cni's in-pod redirection rules.
func (n *BedNode) Pod(name string, mesh bool) *BedPod {
	b := n.b
	n.pods++
	p := &BedPod{Node: n, Name: name, NS: fmt.Sprintf("%s-n%d-%s", b.id, n.Idx, name),
		IP: fmt.Sprintf("10.70.%d.%d", n.Idx, 9+n.pods)}
	p.Path = "/var/run/netns/" + p.NS
	b.addNS(p.NS)
	veth := fmt.Sprintf("v%d", n.pods)
	b.run("ip", "-n", n.NS, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", p.NS)
	b.run("ip", "-n", n.NS, "link", "set", veth, "master", "br0", "up")
	b.run("ip", "-n", p.NS, "addr", "add", p.IP+"/24", "dev", "eth0")
	b.run("ip", "-n", p.NS, "link", "set", "eth0", "up")
	b.run("ip", "-n", p.NS, "route", "add", "default", "via", fmt.Sprintf("10.70.%d.1", n.Idx))
	if mesh {
		p.redirect()
	}
	return p
}

// inPodRules are istio-cni's in-pod rules for IPv4, exactly as its
// cni/pkg/iptables/testdata/default.golden has them (DNS capture on, Istio's default),
// in iptables-restore's syntax: TCP from the pod goes to 15001 unless it is to
// localhost, TCP to the pod goes to 15006 unless it is for 15008; DNS (UDP and TCP 53)
// from the pod goes to 15053; ztunnel's own sockets carry mark 0x539 and are let
// through; connections they answer are marked 0x111 so that replies to spoofed sources
// come back; and ztunnel's upstream DNS queries get conntrack zone 1, apart from the
// pod's own.
const inPodRules = `*mangle
:ISTIO_PRERT - [0:0]
:ISTIO_OUTPUT - [0:0]
-A PREROUTING -j ISTIO_PRERT
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_PRERT -m mark --mark 0x539/0xfff -j CONNMARK --set-xmark 0x111/0xfff
-A ISTIO_OUTPUT -m connmark --mark 0x111/0xfff -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff
COMMIT
*nat
:ISTIO_PRERT - [0:0]
:ISTIO_OUTPUT - [0:0]
-A OUTPUT -j ISTIO_OUTPUT
-A PREROUTING -j ISTIO_PRERT
-A ISTIO_PRERT -s 169.254.7.127 -p tcp -m tcp -j ACCEPT
-A ISTIO_OUTPUT -d 169.254.7.127 -p tcp -m tcp -j ACCEPT
-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp ! --dport 15008 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15006
-A ISTIO_OUTPUT ! -o lo -p udp -m mark ! --mark 0x539/0xfff -m udp --dport 53 -j REDIRECT --to-port 15053
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp --dport 53 -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15053
-A ISTIO_OUTPUT -p tcp -m mark --mark 0x111/0xfff -j ACCEPT
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark 0x539/0xfff -j REDIRECT --to-ports 15001
COMMIT
*raw
:ISTIO_OUTPUT - [0:0]
:ISTIO_PRERT - [0:0]
-A PREROUTING -j ISTIO_PRERT
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_OUTPUT -p udp -m mark --mark 0x539/0xfff -m udp --dport 53 -j CT --zone 1
-A ISTIO_PRERT -p udp -m mark ! --mark 0x539/0xfff -m udp --sport 53 -j CT --zone 1
COMMIT
`

func (p *BedPod) redirect() {
	b := p.Node.b
	cmd := exec.Command("ip", "netns", "exec", p.NS, "iptables-restore")
	cmd.Stdin = strings.NewReader(inPodRules)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.t.Fatalf("installing in-pod rules in %s: %v\n%s", p.NS, err, out)
	}
	b.run("ip", "-n", p.NS, "rule", "add", "fwmark", "0x111/0xfff", "pref", "32764", "lookup", "100")
	b.run("ip", "-n", p.NS, "route", "add", "local", "0.0.0.0/0", "dev", "lo", "table", "100")
}

// Resolv gives the pod the resolv.conf of a Kubernetes pod in namespace k8sNS, naming
// nameserver; `ip netns exec` (Exec) mounts it over /etc/resolv.conf. Go code run
// through Do does not see it: it dials DNS itself.
func (p *BedPod) Resolv(k8sNS, nameserver string) { p.Node.b.resolv(p.NS, k8sNS, nameserver) }

// Resolv gives programs run in the node through `ip netns exec` (a ztunnel binary) the
// resolv.conf of a ztunnel pod: nameserver, and istio-system's search list.
func (n *BedNode) Resolv(nameserver string) { n.b.resolv(n.NS, "istio-system", nameserver) }

func (b *Bed) resolv(ns, k8sNS, nameserver string) {
	dir := "/etc/netns/" + ns
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { os.RemoveAll(dir) })
	conf := fmt.Sprintf("nameserver %s\nsearch %s.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n", nameserver, k8sNS)
	if err := os.WriteFile(dir+"/resolv.conf", []byte(conf), 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// Exec runs a program in the pod, as its containers would (with its resolv.conf), for
// at most 30 s, and returns what it printed.
func (p *BedPod) Exec(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", p.NS}, args...)...).CombinedOutput()
	return string(out), err
}

// Do runs fn with the calling thread in the pod's namespace (to create sockets there).
func (p *BedPod) Do(fn func() error) error {
	ns, err := netns.Open(p.Path)
	if err != nil {
		return err
	}
	defer ns.Close()
	return ns.Do(fn)
}

// Listen opens a TCP listener inside the pod, as its app would.
func (p *BedPod) Listen(t testing.TB, port int) net.Listener {
	t.Helper()
	var l net.Listener
	if err := p.Do(func() (err error) { l, err = net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port)); return err }); err != nil {
		t.Fatal(err)
	}
	return l
}

// Dial connects from inside the pod, as its app would (its traffic is then captured).
func (p *BedPod) Dial(addr string) (net.Conn, error) {
	var c net.Conn
	err := p.Do(func() (err error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var d net.Dialer
		c, err = d.DialContext(ctx, "tcp", addr)
		return err
	})
	return c, err
}

// ServeWhoami runs an app in the pod on port that answers "<its address> <client's
// address>\n" and then echoes, until the test ends: who served a connection, and from
// which source it came, is then what the client reads first.
func (p *BedPod) ServeWhoami(t testing.TB, port int) {
	Serve(t, p.Listen(t, port), func(c net.Conn) {
		fmt.Fprintf(c, "%s %s\n", c.LocalAddr(), c.RemoteAddr())
		io.Copy(c, c)
	})
}

// listenIn opens a TCP listener on addr inside the network namespace at nsPath.
func listenIn(nsPath, addr string) (net.Listener, error) {
	ns, err := netns.Open(nsPath)
	if err != nil {
		return nil, err
	}
	defer ns.Close()
	var l net.Listener
	err = ns.Do(func() (err error) { l, err = net.Listen("tcp", addr); return err })
	return l, err
}
