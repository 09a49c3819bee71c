package proxy

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// tcpSink is a WriteTo destination that the HBONE read loop may also write to without
// blocking (hbone.TryWriter): a tunnel's bytes then go from the TLS connection to the
// app's socket with no goroutine hand-off. It counts what it writes, either way.
type tcpSink struct {
	countingWriter
	rc syscall.RawConn
	// One TryWrite at a time (the stream's read loop), so these carry its arguments and
	// results through rc.Write without a closure allocated per write.
	p   []byte
	n   int
	err error
	try func(fd uintptr) bool
}

func newTCPSink(c *net.TCPConn, count func(int64)) *tcpSink {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	s := &tcpSink{countingWriter: countingWriter{c, count}, rc: rc}
	s.try = s.write
	return s
}

// write makes one attempt: returning true tells rc.Write not to wait for the socket.
func (s *tcpSink) write(fd uintptr) bool {
	s.n, s.err = unix.Write(int(fd), s.p)
	return true
}

// TryWrite writes what the socket takes now; EAGAIN is not an error, just nothing.
func (s *tcpSink) TryWrite(p []byte) (int, error) {
	s.p = p
	if err := s.rc.Write(s.try); err != nil {
		return 0, err
	}
	s.p = nil
	if errors.Is(s.err, unix.EAGAIN) {
		return 0, nil
	}
	if s.err != nil {
		return 0, s.err
	}
	s.count(int64(s.n))
	return s.n, nil
}

// WriteBuffers writes a backlog of the stream's queue blocks with writev(2): net.Buffers
// does so on a *net.TCPConn, which the counting wrapper alone would hide from it.
func (s *tcpSink) WriteBuffers(b *net.Buffers) (int64, error) {
	n, err := b.WriteTo(s.w)
	s.count(n)
	return n, err
}
