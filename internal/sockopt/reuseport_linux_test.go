//go:build linux

package sockopt

import (
	"context"
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// The old ztunnel's steering sends every new connection of the pod's port to the
// successor's socket, and with the successor gone the kernel's hash takes over again.
func TestSteerToNewest(t *testing.T) {
	ztest.NoLeaks(t)
	lc := net.ListenConfig{Control: Options{ReusePort: true}.Control()}
	lc.SetMultipathTCP(false) // as ztunnel's listeners: MPTCP ones take no reuseport program
	old, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	addr := old.Addr().String()
	succ, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer succ.Close()
	port := uint16(old.Addr().(*net.TCPAddr).Port)
	if n, err := Listening(port); err != nil || n != 2 {
		t.Fatalf("Listening(%d) = %d, %v; want the two sockets", port, n, err)
	}
	if err := SteerToNewest(old.(*net.TCPListener)); err != nil {
		t.Fatal(err)
	}
	if got := acceptedBy(t, addr, 20, old, succ); got[0] != 0 || got[1] != 20 {
		t.Errorf("accepted %v by old and successor, want all 20 by the successor", got)
	}
	// The next ztunnel clears what the last drain left, and load is shared again.
	if err := ClearSteering(succ.(*net.TCPListener)); err != nil {
		t.Fatal(err)
	}
	if err := ClearSteering(succ.(*net.TCPListener)); err != nil {
		t.Errorf("clearing twice: %v", err)
	}
	if got := acceptedBy(t, addr, 40, old, succ); got[0] == 0 || got[1] == 0 {
		t.Errorf("accepted %v after clearing, want both to take some", got)
	}
	// Steered, and the successor leaves: index 1 is out of range, the hash picks old.
	SteerToNewest(old.(*net.TCPListener))
	succ.Close()
	if got := acceptedBy(t, addr, 5, old); got[0] != 5 {
		t.Errorf("accepted %v by the last socket, want 5", got)
	}
	var plainLC net.ListenConfig
	plainLC.SetMultipathTCP(false)
	plain, err := plainLC.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if err := SteerToNewest(plain.(*net.TCPListener)); !errors.Is(err, ErrNoReusePort) {
		t.Errorf("steering a socket without SO_REUSEPORT: %v", err)
	}
}

// Why a draining ztunnel steers first: the connections the kernel queued on a
// SO_REUSEPORT socket are reset when it closes, though the group's other socket is
// listening. Steered first, none are queued there.
func TestClosingResetsWhatItQueued(t *testing.T) {
	ztest.NoLeaks(t)
	for _, steer := range []bool{false, true} {
		lc := net.ListenConfig{Control: Options{ReusePort: true}.Control()}
		lc.SetMultipathTCP(false)
		old, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		succ, err := lc.Listen(context.Background(), "tcp", old.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if steer {
			if err := SteerToNewest(old.(*net.TCPListener)); err != nil {
				t.Fatal(err)
			}
		}
		var conns []net.Conn
		for range 20 {
			c, err := net.Dial("tcp", old.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		old.Close() // nothing accepted: as a handshake still queued when a drain closes
		resets := 0
		for _, c := range conns {
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond)) // a reset is already there
			if _, err := c.Read(make([]byte, 1)); errors.Is(err, syscall.ECONNRESET) {
				resets++
			}
			c.Close()
		}
		succ.Close()
		if steer && resets != 0 || !steer && resets == 0 {
			t.Errorf("steered %v: %d of 20 queued connections reset when the old socket closed", steer, resets)
		}
	}
}

// acceptedBy dials addr n times and counts, for each listener, the connections it
// accepted.
func acceptedBy(t *testing.T, addr string, n int, ls ...net.Listener) []int {
	t.Helper()
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	counts := make([]int, len(ls))
	for i, l := range ls {
		tl := l.(*net.TCPListener)
		for {
			tl.SetDeadline(time.Now().Add(50 * time.Millisecond))
			c, err := tl.Accept()
			if err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatal(err)
				}
				break
			}
			c.Close()
			counts[i]++
		}
		tl.SetDeadline(time.Time{})
	}
	return counts
}
