//go:build linux

package netns_test

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"testing"

	"go.uber.org/goleak"

	"github.com/ztunnel-go/ztunnel/internal/netns"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOpenChecksTheKind(t *testing.T) {
	ztest.NoLeaks(t)
	ns, err := netns.Open("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	again, _ := netns.Open("/proc/self/ns/net")
	defer again.Close()
	if !ns.SameAs(again) {
		t.Error("the same namespace opened twice is not SameAs")
	}
	if _, err := netns.Open("/proc/self/ns/uts"); !errors.Is(err, netns.ErrNotNetNS) {
		t.Errorf("a UTS namespace: %v, want ErrNotNetNS", err)
	}
	if _, err := netns.Open(os.Args[0]); !errors.Is(err, netns.ErrNotNetNS) {
		t.Errorf("a plain file: %v, want ErrNotNetNS", err)
	}
}

// TestDoCreatesSocketsInside makes a namespace, listens inside it, and checks the
// listener is not in ours: it only sees the namespace's own loopback.
func TestDoCreatesSocketsInside(t *testing.T) {
	ztest.NoLeaks(t)
	if os.Geteuid() != 0 {
		t.Skip("creating and entering network namespaces needs root; CI runs this as root")
	}
	name := "zt-netns-test"
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", name).Run()
	exec.Command("ip", "-n", name, "link", "set", "lo", "up").Run()
	ns, err := netns.Open("/var/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	var l net.Listener
	if err := ns.Do(func() (err error) { l, err = net.Listen("tcp", "127.0.0.1:0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if c, err := net.Dial("tcp", l.Addr().String()); err == nil { // from our namespace: nothing there
		c.Close()
		t.Error("a listener made inside the namespace is reachable from outside it")
	}
	var c net.Conn
	if err := ns.Do(func() (err error) { c, err = net.Dial("tcp", l.Addr().String()); return err }); err != nil {
		t.Fatalf("dialling inside the namespace: %v", err)
	}
	c.Close()
}
