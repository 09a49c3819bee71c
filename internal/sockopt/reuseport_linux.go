//go:build linux

package sockopt

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// ErrNoReusePort is SteerToNewest's answer for a socket outside any SO_REUSEPORT group.
var ErrNoReusePort = errors.New("socket is not in a SO_REUSEPORT group")

// SteerToNewest sends the new connections of a SO_REUSEPORT group to its second socket.
// During a rolling update a pod's listeners are a group of two, the old ztunnel's
// (slot 0, it joined first) and the new one's (slot 1), and the kernel splits
// handshakes between them by hash; closing the old socket resets the handshakes it
// had been given but not yet accepted. A one-instruction classic BPF program
// returning 1 picks the new socket for every handshake; once the old one has closed,
// index 1 is out of range and the kernel goes back to its hash
// (net/core/sock_reuseport.c, run_bpf_filter). The program belongs to the group, so
// the next ztunnel to bind clears it (ClearSteering).
func SteerToNewest(l syscall.Conn) error {
	return control(l, func(fd int) error {
		on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT)
		if err != nil {
			return err
		}
		if on == 0 {
			return ErrNoReusePort
		}
		prog := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 1}}
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_CBPF, &fprog); err != nil {
			return fmt.Errorf("attaching the reuseport program: %w", err)
		}
		return nil
	})
}

// ClearSteering removes a steering program left on the group by a ztunnel that drained
// before, so that a new listener shares the load by hash again until the next drain.
func ClearSteering(l syscall.Conn) error {
	return control(l, func(fd int) error {
		err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DETACH_REUSEPORT_BPF, 0)
		// ENOENT: nothing attached. ENOPROTOOPT: a kernel before 5.3 cannot detach; a
		// leftover program then sends everything to the newest socket, which is where a
		// rolling update puts it anyway.
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOPROTOOPT) {
			return nil
		}
		return err
	})
}

func control(l syscall.Conn, fn func(fd int) error) error {
	rc, err := l.SyscallConn()
	if err != nil {
		return err
	}
	var opErr error
	if err := rc.Control(func(fd uintptr) { opErr = fn(int(fd)) }); err != nil {
		return err
	}
	return opErr
}

// Listening counts the TCP sockets listening on port, of either family, in the calling
// thread's network namespace: more than one on a pod's port means a successor ztunnel
// is there.
func Listening(port uint16) (int, error) {
	suffix := fmt.Sprintf(":%04X", port)
	n := 0
	for _, table := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 3 && strings.HasSuffix(f[1], suffix) && f[3] == "0A" { // TCP_LISTEN
				n++
			}
		}
	}
	return n, nil
}
