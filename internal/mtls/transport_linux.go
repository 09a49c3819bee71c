package mtls

import (
	"io"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

const chunkedReads = true

// readSocket reads what the socket holds into a pooled buffer, taken only once there
// is something to read: while the socket is empty the goroutine waits in the poller
// (RawConn.Read calls again once it is readable) without holding a buffer.
func (t *Transport) readSocket() error {
	var n int
	var rerr error
	err := t.raw.Read(func(fd uintptr) bool {
		b := readPool.Get().(*[]byte)
		for {
			n, rerr = unix.Read(int(fd), *b)
			if rerr != unix.EINTR {
				break
			}
		}
		if rerr == unix.EAGAIN || n <= 0 {
			readPool.Put(b)
			return rerr != unix.EAGAIN // EOF and errors end the wait too
		}
		t.rbuf, t.roff, t.rend = b, 0, n
		return true
	})
	switch {
	case err != nil:
		return err
	case rerr != nil:
		return &net.OpError{Op: "read", Net: "tcp", Source: t.LocalAddr(), Addr: t.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0:
		return io.EOF
	}
	return nil
}
