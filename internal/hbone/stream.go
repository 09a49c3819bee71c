package hbone

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// Stream is one tunnel: a full-duplex byte pipe whose two directions close on their own.
// Its state is guarded by its connection's mutex; Read and Write may run concurrently
// (one reader, one writer), as the copy loops use them.
type Stream struct {
	c   *Conn
	id  uint32
	req *Request // server side: what the client asked for

	cond     *sync.Cond // on c.mu: data, window, status, reset
	recv     recvQueue  // received, not yet read
	inflight uint32     // bytes WriteTo took out of recv and has not credited yet
	writing  bool       // WriteTo is writing what it took
	sink     TryWriter  // WriteTo's destination, when the read loop may write to it
	direct   bool       // the read loop is writing to sink: recv's newest bytes are its
	// awaitDirect: WriteTo waits for that write's end, and must be woken by it even when
	// it leaves no bytes (a reset may have come meanwhile).
	awaitDirect bool
	delivered   int64  // bytes the read loop wrote to sink
	recvEOF     bool   // END_STREAM received
	unacked     uint32 // bytes read but not yet credited back to the peer
	recvWindow  int64  // what the peer may still send before our next WINDOW_UPDATE
	contentLen  int64  // server: content-length bytes still to come; -1 when none was declared
	sendWindow  int32
	sentEnd     bool   // END_STREAM sent
	resetErr    error  // RST_STREAM either way, or the connection died
	status      int    // client: response status once received
	respBaggage string // client: the response's baggage header, if any
	answered    bool   // server: Respond was called
	removed     bool
	rdeadline   time.Time
	wdeadline   time.Time
}

func (c *Conn) newStreamLocked(id uint32) *Stream {
	s := &Stream{c: c, id: id, sendWindow: c.peerWindow, contentLen: -1,
		recvWindow: int64(max(c.local.StreamWindow, initialWindow))} // the peer may not have our SETTINGS yet
	s.cond = sync.NewCond(&c.mu)
	c.streams[id] = s
	c.active++
	return s
}

// ID is the HTTP/2 stream id.
func (s *Stream) ID() uint32 { return s.id }

// Request is what the client asked for (server side).
func (s *Stream) Request() *Request { return s.req }

// Conn is the connection carrying the stream.
func (s *Stream) Conn() *Conn { return s.c }

// ResponseBaggage is the baggage header of the CONNECT's answer (client side): the
// destination's description, which Rust's inbound sends (ENABLE_RESPONSE_BAGGAGE).
func (s *Stream) ResponseBaggage() string {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.respBaggage
}

// Read returns received bytes; io.EOF once the peer half-closed and all was read.
func (s *Stream) Read(p []byte) (int, error) {
	c := s.c
	c.mu.Lock()
	if err := s.waitDataLocked(); err != nil {
		c.mu.Unlock()
		return 0, err
	}
	n := s.recv.read(p)
	var streamInc, connInc uint32
	if !s.removed { // a removed stream's bytes were credited when it was removed
		streamInc, connInc = s.creditLocked(uint32(n))
	}
	c.mu.Unlock()
	c.writeWindowUpdates(s.id, streamInc, connInc)
	return n, nil
}

// waitDataLocked waits until the stream has unread bytes (nil), or will have no more:
// io.EOF after END_STREAM, else the reset or deadline that ended the wait.
func (s *Stream) waitDataLocked() error {
	for s.recv.size == 0 && !s.recvEOF && s.resetErr == nil {
		if err := s.waitLocked(s.rdeadline); err != nil {
			return err
		}
	}
	switch {
	case s.recv.size > 0:
		return nil
	case s.recvEOF:
		s.maybeRemoveLocked()
		return io.EOF
	}
	return s.resetErr
}

// creditLocked returns the window increments to send once half a window was read, so
// the peer keeps sending without a WINDOW_UPDATE per read.
func (s *Stream) creditLocked(n uint32) (streamInc, connInc uint32) {
	c := s.c
	s.unacked += n
	c.recvUnacked += n
	if !s.recvEOF && s.unacked >= c.local.StreamWindow/2 {
		streamInc, s.unacked = s.unacked, 0
		s.recvWindow += int64(streamInc)
	}
	connInc = c.takeConnCreditLocked()
	return streamInc, connInc
}

// Write sends p as DATA frames within the peer's flow-control windows.
func (s *Stream) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n, err := s.reserve(len(p), true)
		if err != nil {
			return written, err
		}
		s.c.wmu.Lock()
		err = s.c.fr.WriteData(s.id, false, p[:n])
		s.c.unlockW()
		if err != nil {
			return written, s.c.fail(err)
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

// reserve waits for send window and takes up to want bytes of it; oneFrame also caps
// it at the peer's largest frame (a caller that splits into frames itself takes more).
func (s *Stream) reserve(want int, oneFrame bool) (int, error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		switch {
		case s.resetErr != nil:
			return 0, s.resetErr
		case s.sentEnd:
			return 0, errors.New("write after CloseWrite")
		case s.sendWindow > 0 && c.sendWindow > 0:
			n := min(int32(want), s.sendWindow, c.sendWindow)
			if oneFrame {
				n = min(n, int32(c.peerFrame))
			}
			s.sendWindow -= n
			c.sendWindow -= n
			return int(n), nil
		}
		if err := s.waitLocked(s.wdeadline); err != nil {
			return 0, err
		}
	}
}

// CloseWrite half-closes: the peer reads EOF, and can keep sending.
func (s *Stream) CloseWrite() error {
	c := s.c
	c.mu.Lock()
	if s.sentEnd || s.resetErr != nil {
		c.mu.Unlock()
		return nil
	}
	s.sentEnd = true
	c.mu.Unlock()
	c.wmu.Lock()
	err := c.fr.WriteData(s.id, true, nil)
	c.unlockW()
	c.mu.Lock()
	s.maybeRemoveLocked()
	c.mu.Unlock()
	if err != nil {
		return c.fail(err)
	}
	return nil
}

// Close ends both directions. A stream not yet finished both ways is reset, which
// ends this tunnel only: CANCEL, or NO_ERROR from a server that sent its whole answer
// and wants no more of the request (§8.1), as Rust's h2 chooses (maybe_cancel).
func (s *Stream) Close() error {
	c := s.c
	c.mu.Lock()
	if s.removed {
		c.mu.Unlock()
		return nil
	}
	if s.sentEnd && s.recvEOF { // finished both ways, bytes left unread
		s.removeLocked(closedDone)
		c.mu.Unlock()
		return nil
	}
	code := http2.ErrCodeCancel
	if s.sentEnd && !c.client {
		code = http2.ErrCodeNo
	}
	s.resetErr = net.ErrClosed
	s.removeLocked(closedByUs)
	c.mu.Unlock()
	c.writeRST(s.id, code)
	return nil
}

// Reset aborts the stream with an error code, as after a failed dial to the app.
func (s *Stream) Reset(code http2.ErrCode) {
	c := s.c
	c.mu.Lock()
	if s.removed {
		c.mu.Unlock()
		return
	}
	s.resetErr = http2.StreamError{StreamID: s.id, Code: code}
	s.removeLocked(closedByUs)
	c.mu.Unlock()
	c.writeRST(s.id, code)
}

func (s *Stream) maybeRemoveLocked() {
	if s.sentEnd && s.recvEOF && s.recv.size == 0 {
		s.removeLocked(closedDone)
	}
}

// removeLocked forgets the stream, remembering how it closed. Bytes it received and no
// one has read yet still hold connection window at the peer: they are credited back
// now, or a connection whose streams are often reset with data in flight would starve
// every later stream.
func (s *Stream) removeLocked(cause closeCause) {
	if s.removed {
		return
	}
	s.removed = true
	s.c.closedIDs.mark(s.id, cause)
	// The bytes stay readable (a stream reset after its data still delivers it); Read
	// does not credit them a second time.
	s.c.discardLocked(s.recv.size)
	delete(s.c.streams, s.id)
	s.c.active--
	s.c.lastUse = time.Now()
	s.cond.Broadcast()
	s.c.closeIfDrainedLocked()
}

// SetDeadline, SetReadDeadline and SetWriteDeadline bound blocked Reads and Writes.
func (s *Stream) SetDeadline(t time.Time) error {
	s.SetReadDeadline(t)
	return s.SetWriteDeadline(t)
}

func (s *Stream) SetReadDeadline(t time.Time) error {
	s.c.mu.Lock()
	s.rdeadline = t
	s.c.mu.Unlock()
	s.wakeAt(t)
	return nil
}

func (s *Stream) SetWriteDeadline(t time.Time) error {
	s.c.mu.Lock()
	s.wdeadline = t
	s.c.mu.Unlock()
	s.wakeAt(t)
	return nil
}

// wakeAt arranges a broadcast at t so a waiter can notice its deadline passed.
func (s *Stream) wakeAt(t time.Time) {
	if t.IsZero() {
		return
	}
	time.AfterFunc(time.Until(t), func() {
		s.c.mu.Lock()
		s.cond.Broadcast()
		s.c.mu.Unlock()
	})
}

func (s *Stream) waitLocked(deadline time.Time) error {
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return os.ErrDeadlineExceeded
	}
	s.cond.Wait()
	return nil
}

// LocalAddr and RemoteAddr are the connection's, so a Stream can stand as a net.Conn.
func (s *Stream) LocalAddr() net.Addr  { return s.c.LocalAddr() }
func (s *Stream) RemoteAddr() net.Addr { return s.c.RemoteAddr() }

var _ net.Conn = (*Stream)(nil)
