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
	if t.readFn == nil {
		t.readFn = t.readOnce // one method value for the connection, not one per read
	}
	t.rn, t.rerr = 0, nil
	if err := t.raw.Read(t.readFn); err != nil {
		return err
	}
	switch {
	case t.rerr != nil:
		return &net.OpError{Op: "read", Net: "tcp", Source: t.LocalAddr(), Addr: t.RemoteAddr(), Err: os.NewSyscallError("read", t.rerr)}
	case t.rn == 0:
		return io.EOF
	}
	return nil
}

// readOnce is one attempt: false (wait for readability) when the socket is empty.
func (t *Transport) readOnce(fd uintptr) bool {
	b := readPool.Get().(*[]byte)
	var n int
	var err error
	for {
		if n, err = unix.Read(int(fd), *b); err != unix.EINTR {
			break
		}
	}
	if err == unix.EAGAIN || n <= 0 {
		readPool.Put(b)
		if err == unix.EAGAIN {
			return false
		}
		t.rn, t.rerr = 0, err // EOF or an error ends the wait too
		return true
	}
	t.rbuf, t.roff, t.rend, t.rn = b, 0, n, n
	return true
}
