package proxy

import (
	"errors"
	"io"
	"net"
	"sync"

	"golang.org/x/net/http2"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
)

// halfConn is a connection whose write side closes on its own: *net.TCPConn and
// *hbone.Stream both are.
type halfConn interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// pipe copies both ways until both directions have ended. EOF in one direction is
// passed on as a half-close (FIN ↔ END_STREAM) while the other keeps flowing; an
// error in either aborts both, and so does silence past the timeouts. a is
// the client's side. It returns the bytes a→b and b→a, and reports them to mc as
// they flow.
func pipe(a, b halfConn, mc *metrics.Conn, l Timeouts) (aToB, bToA int64, err error) {
	var wg sync.WaitGroup
	var errB error
	w := startWatchdog(l, func() { abort(a, b) }, a, b)
	wg.Go(func() {
		bToA, errB = copyHalf(a, b, mc.ServerToClient)
		if errB != nil {
			abort(a, b)
		}
		w.halfClosed()
	})
	aToB, err = copyHalf(b, a, mc.ClientToServer)
	if err != nil {
		abort(a, b)
	}
	w.halfClosed()
	wg.Wait()
	a.Close()
	b.Close()
	if expired := w.stop(); expired != nil {
		return aToB, bToA, expired
	}
	return aToB, bToA, errors.Join(err, errB)
}

// copyHalf copies src to dst, then half-closes dst; count sees every chunk written.
// Each pair of sides has its own path without a copy through a buffer of ours: splice
// between sockets, the stream's own buffers to or from a socket.
func copyHalf(dst, src halfConn, count func(int64)) (int64, error) {
	var n int64
	var err error
	if dt, ok := dst.(*net.TCPConn); ok {
		if st, ok := src.(*net.TCPConn); ok {
			n, err = dt.ReadFrom(st) // splice(2) between two sockets: counted at the end
			count(n)
			return n, finish(dst, err)
		}
	}
	if st := streamOf(src); st != nil {
		// The stream writes its own receive buffers to dst: no copy through ours. A
		// TCP dst also takes writes from the stream's read loop when it is idle.
		var w io.Writer = countingWriter{dst, count}
		if dt, ok := dst.(*net.TCPConn); ok {
			if sink := newTCPSink(dt, count); sink != nil {
				w = sink
			}
		}
		n, err = st.WriteTo(w)
		return n, finish(dst, err)
	}
	if dt := streamOf(dst); dt != nil {
		// The stream builds DATA frames in its own read buffer: no copy through ours.
		n, err = dt.ReadFrom(countingReader{src, count})
		return n, finish(dst, err)
	}
	// Not reached in production: every side is a TCP socket or an HBONE stream, and
	// never two streams (the cases above own their buffers). Kept correct, not fast.
	n, err = io.Copy(countingWriter{dst, count}, src)
	return n, finish(dst, err)
}

// countingWriter reports each write to the connection's metrics as it happens.
type countingWriter struct {
	w     io.Writer
	count func(int64)
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.count(int64(n))
	return n, err
}

// countingReader reports each read to the connection's metrics: what is read toward
// a stream is written before the next read.
type countingReader struct {
	r     io.Reader
	count func(int64)
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.count(int64(n))
	return n, err
}

func finish(dst halfConn, err error) error {
	if err != nil {
		return err
	}
	return dst.CloseWrite()
}

// abort ends both sides after an error. A TCP side is reset, not closed: an abort must
// reach the app as an abort (RST), never as a FIN that passes a truncated transfer for
// a complete one. An HBONE side is reset with CONNECT_ERROR, RFC 9113 §8.5's code
// for a TCP connection that failed.
func abort(a, b io.Closer) {
	for _, c := range []io.Closer{a, b} {
		switch c := c.(type) {
		case *net.TCPConn:
			c.SetLinger(0)
		case *hbone.Stream:
			c.Reset(http2.ErrCodeConnect)
		case *innerTunnel:
			c.Stream.Reset(http2.ErrCodeConnect)
		}
		c.Close()
	}
}
