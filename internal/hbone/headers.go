package hbone

import (
	"fmt"

	"golang.org/x/net/http2"
)

// onRequest admits a new stream from the client, refuses it without harming others,
// or takes the HEADERS as a trailer section of an open stream.
func (c *Conn) onRequest(f *http2.MetaHeadersFrame, accept func(*Stream)) error {
	id := f.StreamID
	c.mu.Lock()
	st, s := c.stateLocked(id)
	switch {
	case st != stateIdle:
		defer c.mu.Unlock()
		return c.trailersLocked(st, s, f)
	case !c.peerOpens(id):
		c.mu.Unlock()
		return connError(http2.ErrCodeProtocol, "HEADERS on stream %d, which a client cannot open (§5.1.1)", id)
	}
	c.lastPeerID = id
	// Handlers of reset streams still count: they may be dialing (Rapid Reset).
	if c.goAway || c.active >= int(c.local.MaxStreams) || c.handlers >= int(c.local.MaxStreams) {
		defer c.mu.Unlock()
		return c.refuseLocked(id, http2.ErrCodeRefusedStream, "over the stream limit, or going away")
	}
	req, reason := requestOf(f)
	if reason != "" {
		defer c.mu.Unlock()
		return c.refuseLocked(id, http2.ErrCodeProtocol, "malformed request: "+reason)
	}
	s = c.newStreamLocked(id)
	c.handlers++
	s.req = req
	s.contentLen = req.contentLen
	if f.StreamEnded() {
		s.recvEOF = true
	}
	c.mu.Unlock()
	accept(s)
	return nil
}

// refuseLocked ends a stream its HEADERS just opened, drawing on the reset budget.
func (c *Conn) refuseLocked(id uint32, code http2.ErrCode, reason string) error {
	c.streamErrorLocked(id, code, reason) // nil: the stream was never live
	return c.earlyEndLocked()
}

// trailersLocked takes a HEADERS frame on a stream already opened. A CONNECT stream
// carries none (§8.5: only DATA and stream management frames); another request may
// end with a trailer section (§8.1).
func (c *Conn) trailersLocked(st streamState, s *Stream, f *http2.MetaHeadersFrame) error {
	if st == stateHalfClosedRemote || st == stateClosed {
		return c.lateHeadersLocked(f.StreamID, st, s)
	}
	reason := trailersErr(f, true)
	switch {
	case s.req.Method() == "CONNECT":
		reason = "HEADERS on a CONNECT stream (§8.5)"
	case reason == "" && s.contentLen > 0:
		reason = "trailers before the declared content-length"
	}
	if reason != "" {
		return c.streamErrorLocked(f.StreamID, http2.ErrCodeProtocol, "malformed request: "+reason)
	}
	s.recvEOF = true
	s.cond.Broadcast()
	return nil
}

// lateHeadersLocked answers a HEADERS frame on a stream that no longer receives. On a
// server, one on a stream closed beyond memory is an unexpected stream identifier
// (§5.1.1): a client reopening an old stream. A client resets just the stream.
func (c *Conn) lateHeadersLocked(id uint32, st streamState, s *Stream) error {
	if s == nil && !c.client && c.causeLocked(id) == closedLongAgo {
		return connError(http2.ErrCodeProtocol, "HEADERS on stream %d, not above the last opened %d (§5.1.1)", id, c.lastPeerID)
	}
	return c.lateFrameLocked(id, st, s, "HEADERS")
}

// onResponse takes a HEADERS frame on one of our streams: interim responses are
// skipped, the final one wakes OpenStream, and a trailer section ends a refused
// stream. A malformed response resets the stream (§8.1.1: clients MUST NOT accept it).
func (c *Conn) onResponse(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	c.mu.Lock()
	defer c.mu.Unlock()
	st, s := c.stateLocked(id)
	switch st {
	case stateIdle:
		return connError(http2.ErrCodeProtocol, "HEADERS on idle stream %d: a server opens none", id)
	case stateHalfClosedRemote, stateClosed:
		return c.lateHeadersLocked(id, st, s)
	}
	if f.Truncated { // larger than we accept: discarded (§10.5.1), as Rust's h2 does
		return c.streamErrorLocked(id, http2.ErrCodeCancel, "response header section over MaxHeaderListSize")
	}
	if s.status != 0 {
		reason := trailersErr(f, false)
		if s.status/100 == 2 {
			reason = "HEADERS on a connected CONNECT stream (§8.5)"
		}
		if reason != "" {
			return c.streamErrorLocked(id, http2.ErrCodeProtocol, "malformed response: "+reason)
		}
		s.recvEOF = true
		s.cond.Broadcast()
		return nil
	}
	status, reason := responseOf(f)
	if reason != "" {
		return c.streamErrorLocked(id, http2.ErrCodeProtocol, fmt.Sprintf("malformed response: %s", reason))
	}
	if status < 200 {
		return nil // interim: the final response follows (§8.1)
	}
	s.status = status
	for _, h := range f.RegularFields() {
		if h.Name == "baggage" {
			s.respBaggage = joinHeader(s.respBaggage, h.Value)
		}
	}
	if f.StreamEnded() {
		s.recvEOF = true
	}
	s.cond.Broadcast()
	return nil
}

// joinHeader folds repeated fields into one, as RFC 9110 §5.3 allows for lists.
func joinHeader(have, v string) string {
	if have == "" {
		return v
	}
	return have + "," + v
}
