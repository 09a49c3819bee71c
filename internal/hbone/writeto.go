package hbone

import "io"

// WriteTo hands received bytes to w without copying them out of the stream: the
// buffer the read loop filled is written as it is, while a second one takes the next
// DATA frames. It saves the proxy's copy loop a memmove per byte and writes everything
// that arrived in one call. It returns at END_STREAM (nil) or on the first error.
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
	var spare []byte
	for {
		chunk, full, err := s.takeReceived(spare)
		if chunk == nil {
			return total, err
		}
		n, werr := w.Write(chunk)
		total += int64(n)
		s.credit(uint32(len(chunk)))
		spare = full[:0]
		if werr != nil {
			return total, werr
		}
	}
}

// takeReceived waits for data and swaps the receive buffer for spare. It returns the
// unread bytes and the whole buffer they sit in, or nil and the reason there will be
// no more (nil at END_STREAM).
func (s *Stream) takeReceived(spare []byte) (chunk, full []byte, err error) {
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if err := s.waitDataLocked(); err != nil {
			if err == io.EOF {
				err = nil
			}
			return nil, nil, err
		}
		if !s.direct {
			break
		}
		s.awaitDirect = true
		s.cond.Wait() // the read loop is writing the newest bytes itself; then look again
	}
	full, chunk = s.rbuf, s.rbuf[s.roff:]
	s.rbuf, s.roff = spare[:0], 0
	s.writing = true
	if !s.removed { // a removed stream's bytes were credited when it was removed
		s.inflight = uint32(len(chunk))
	}
	return chunk, full, nil
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
