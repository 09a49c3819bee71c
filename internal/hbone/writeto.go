package hbone

import (
	"io"
	"net"
)

// WriteTo hands received bytes to w without copying them out of the stream: the
// queue's blocks are written as they are (several in one writev(2) when w can), while
// the read loop fills new ones. It saves the proxy's copy loop a memmove per byte and
// writes everything that arrived in one call. It returns at END_STREAM (nil) or on the
// first error.
func (s *Stream) WriteTo(w io.Writer) (total int64, err error) {
	if tw, ok := w.(TryWriter); ok {
		s.c.mu.Lock()
		s.sink = tw
		s.c.mu.Unlock()
	}
	defer func() { // what the read loop wrote to w itself counts too
		s.c.mu.Lock()
		s.sink = nil
		total += s.delivered
		s.c.mu.Unlock()
	}()
	bw, _ := w.(BuffersWriter)
	var segs net.Buffers
	var owned []*[]byte
	for {
		var n int
		segs, owned, n, err = s.takeReceived(segs[:0], owned[:0])
		if n == 0 {
			return total, err
		}
		var written int64
		var werr error
		b := segs // both consume their slice; segs keeps the backing array
		if bw != nil {
			written, werr = bw.WriteBuffers(&b)
		} else {
			written, werr = b.WriteTo(w) // a Write per segment
		}
		total += written
		s.credit(uint32(n))
		release(owned)
		if werr != nil {
			return total, werr
		}
	}
}

// BuffersWriter writes several buffers at once (writev(2) on a TCP socket). A WriteTo
// destination that is one gets a backlog of queue blocks in one call.
type BuffersWriter interface {
	WriteBuffers(b *net.Buffers) (int64, error)
}

// takeReceived waits for data and takes all of it out of the queue: the unread bytes
// as segments, the blocks to give back once they are written, and their count; 0 and
// the reason there will be no more (nil at END_STREAM).
func (s *Stream) takeReceived(segs [][]byte, owned []*[]byte) ([][]byte, []*[]byte, int, error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if err := s.waitDataLocked(); err != nil {
			if err == io.EOF {
				err = nil
			}
			return segs, owned, 0, err
		}
		if !s.direct {
			break
		}
		s.awaitDirect = true
		s.cond.Wait() // the read loop is writing the newest bytes itself; then look again
	}
	segs, owned, n := s.recv.takeAll(segs, owned)
	s.writing = true
	if !s.removed { // a removed stream's bytes were credited when it was removed
		s.inflight = uint32(n)
	}
	return segs, owned, n, nil
}

// credit gives the peer window back for n bytes taken by takeReceived. If the stream
// was removed meanwhile, the connection window is still owed.
func (s *Stream) credit(n uint32) {
	c := s.c
	c.mu.Lock()
	var streamInc, connInc uint32
	switch {
	case s.inflight == 0: // taken after removal: credited then
	case s.removed:
		c.recvUnacked += s.inflight
		connInc = c.takeConnCreditLocked()
	default:
		streamInc, connInc = s.creditLocked(n)
	}
	s.inflight = 0
	s.writing = false
	c.mu.Unlock()
	c.writeWindowUpdates(s.id, streamInc, connInc)
}
