package hbone

import "golang.org/x/net/http2"

// TryWriter writes without blocking: what the socket takes now, and no error when it
// takes nothing (EAGAIN). A WriteTo destination that is one lets the read loop deliver
// a DATA frame itself when the stream's writer is idle, sparing a goroutine hand-off
// (a futex wake and a schedule, on each side, on each request and response) that a
// bare TLS pipe does not pay. What the socket does not take is left for WriteTo.
type TryWriter interface {
	TryWrite(p []byte) (int, error)
}

// deliverLocked writes the n bytes of the frame just committed straight to the
// stream's idle writer, when it has one and they are all it has to write. It releases
// c.mu while writing; while it does, direct is set, and WriteTo and removal leave those
// bytes alone.
//
// Only frames smaller than a full TLS record's worth go direct: a full one means bulk
// is flowing, and then the read loop decrypting the next frame while WriteTo writes
// the last ones (and several at once) beats doing both in turn on one goroutine.
// It reports whether every received byte has been written (nothing left for WriteTo).
func (s *Stream) deliverLocked(n int) bool {
	c := s.c
	if s.sink == nil || s.direct || s.writing || s.removed || s.recv.size != n || n >= maxRecordPayload {
		return false // bulk, or the writer has older bytes to write first, or is writing them
	}
	data, ok := s.recv.last(n)
	if !ok {
		return false
	}
	s.direct = true
	c.mu.Unlock()
	wrote, err := s.sink.TryWrite(data)
	c.mu.Lock()
	s.direct = false
	if s.awaitDirect {
		s.awaitDirect = false
		s.cond.Broadcast()
	}
	if err != nil || wrote == 0 {
		return false // WriteTo writes them, or meets the error itself
	}
	s.recv.consume(wrote)
	s.delivered += int64(wrote)
	if s.removed {
		return s.recv.size == 0 // its unread bytes were credited when it was removed
	}
	streamInc, connInc := s.creditLocked(uint32(wrote))
	if streamInc > 0 {
		c.pushControl(control{kind: uint8(http2.FrameWindowUpdate), id: s.id, inc: streamInc})
	}
	if connInc > 0 {
		c.pushControl(control{kind: uint8(http2.FrameWindowUpdate), inc: connInc})
	}
	s.maybeRemoveLocked()
	return s.recv.size == 0
}
