//go:build linux

package sockopt_test

import (
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/ztunnel-go/ztunnel/internal/sockopt"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestOptionsApplied dials with every option and reads them back from the socket. Setting
// SO_MARK and IP_TRANSPARENT needs CAP_NET_ADMIN, which CI (root) has.
func TestOptionsApplied(t *testing.T) {
	ztest.NoLeaks(t)
	if os.Geteuid() != 0 {
		t.Skip("SO_MARK and IP_TRANSPARENT need root (CAP_NET_ADMIN); CI runs this as root")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	o := sockopt.Options{Mark: 1337, Transparent: true, UserTimeout: 30 * time.Second}
	d := net.Dialer{Control: o.Control()}
	c, err := d.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, _ := c.(*net.TCPConn).SyscallConn()
	rc.Control(func(fd uintptr) {
		for _, opt := range []struct {
			name       string
			level, opt int
			want       int
		}{
			{"SO_MARK", unix.SOL_SOCKET, unix.SO_MARK, 1337},
			{"IP_TRANSPARENT", unix.SOL_IP, unix.IP_TRANSPARENT, 1},
			{"TCP_USER_TIMEOUT", unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 30000},
		} {
			if got, err := unix.GetsockoptInt(int(fd), opt.level, opt.opt); err != nil || got != opt.want {
				t.Errorf("%s = %d, %v; want %d", opt.name, got, err, opt.want)
			}
		}
	})
}

func TestNoOptionsNoHook(t *testing.T) {
	ztest.NoLeaks(t)
	if (sockopt.Options{}).Control() != nil {
		t.Error("empty options should add no Control hook")
	}
}

func TestOriginalDstWithoutRedirect(t *testing.T) {
	ztest.NoLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Without an iptables REDIRECT there is no original destination to report.
	if ap, err := sockopt.OriginalDst(s.(*net.TCPConn)); err == nil && ap.String() != l.Addr().String() {
		t.Errorf("OriginalDst = %v without a redirect", ap)
	}
}
