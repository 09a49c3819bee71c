package hbone

import (
	"fmt"

	"golang.org/x/net/http2"
)

// Every frame the peer sends on a stream is judged against the stream's state as RFC
// 9113 §5.1 defines it, seen from this side. The reserved states never occur: push is
// off both ways, so a PUSH_PROMISE is a connection error wherever it arrives.
//
// A live stream is in Conn.streams and its state follows from what each side sent.
// A stream not there is idle if its id was never used (§5.1.1: higher than the peer's
// last, or not yet reached by our next), else closed. Closed streams are remembered,
// a bounded number of them, with how they closed, because that decides what a late
// frame means: after our RST_STREAM the peer's frames in flight are discarded (§5.1
// closed: MUST discard), after END_STREAM both ways or the peer's RST_STREAM, DATA and
// HEADERS are answered STREAM_CLOSED (§6.1), once per stream. A closed stream fallen
// out of memory is handled as one that closed normally, but a HEADERS on it is an
// unexpected stream identifier (§5.1.1), as x/net's server treats it.
type streamState uint8

const (
	stateIdle streamState = iota
	stateOpen
	stateHalfClosedLocal  // we sent END_STREAM
	stateHalfClosedRemote // the peer sent END_STREAM
	stateClosed
)

func (s streamState) String() string {
	return [...]string{"idle", "open", "half-closed (local)", "half-closed (remote)", "closed"}[s]
}

// closeCause is how a closed stream closed.
type closeCause uint8

const (
	closedLongAgo closeCause = iota // not remembered: an id skipped, or closed before memory's reach
	closedDone                      // END_STREAM sent and received
	closedByUs                      // we sent RST_STREAM
	closedByPeer                    // the peer sent RST_STREAM
)

// closedMemory is how many closed streams a connection remembers: enough for every
// stream of a full connection (MaxStreams 200 by default would need more, but the
// late frames that matter arrive within a round trip of the close) at 1 KiB a
// connection, allocated only as streams close.
const closedMemory = 128

// closedStreams is a ring of the most recently closed streams. Guarded by Conn.mu.
type closedStreams struct {
	ring []closedEntry
	next int // where the next entry goes once the ring is full
}

type closedEntry struct {
	id    uint32
	cause closeCause
}

// mark records that id closed, or changes how (a stream answered STREAM_CLOSED is one
// we reset: what follows is discarded).
func (m *closedStreams) mark(id uint32, cause closeCause) {
	for i := range m.ring {
		if m.ring[i].id == id {
			m.ring[i].cause = cause
			return
		}
	}
	if len(m.ring) < closedMemory {
		m.ring = append(m.ring, closedEntry{id, cause})
		return
	}
	m.ring[m.next] = closedEntry{id, cause}
	m.next = (m.next + 1) % closedMemory
}

func (m *closedStreams) cause(id uint32) closeCause {
	for _, e := range m.ring {
		if e.id == id {
			return e.cause
		}
	}
	return closedLongAgo
}

// stateLocked is the state of stream id and the stream if it is live. A live stream
// that ended both ways but still holds unread bytes is closed.
func (c *Conn) stateLocked(id uint32) (streamState, *Stream) {
	if s := c.streams[id]; s != nil {
		switch {
		case s.recvEOF && s.sentEnd:
			return stateClosed, s
		case s.recvEOF:
			return stateHalfClosedRemote, s
		case s.sentEnd:
			return stateHalfClosedLocal, s
		}
		return stateOpen, s
	}
	if c.idleLocked(id) {
		return stateIdle, nil
	}
	return stateClosed, nil
}

// idleLocked reports a stream id never used: one the peer opens (odd from a client)
// above the last it opened, or one we open not yet reached. A server opens none, and
// a client's peer none (push is off), so all of those are idle.
func (c *Conn) idleLocked(id uint32) bool {
	if c.peerOpens(id) {
		return id > c.lastPeerID
	}
	return id >= c.nextID
}

// peerOpens reports whether id is of the kind the peer initiates (§5.1.1: odd ids
// are the client's).
func (c *Conn) peerOpens(id uint32) bool { return (id%2 == 1) != c.client }

// causeLocked is how a stream that is not live closed.
func (c *Conn) causeLocked(id uint32) closeCause { return c.closedIDs.cause(id) }

// streamErrorLocked ends stream id with RST_STREAM(code) (§5.4.2): the stream is
// forgotten, what the peer still sends on it is discarded, and a stream ended before
// it was answered draws on the reset budget (ErrFlood when spent). It must not be
// called for an idle stream, on which RST_STREAM is forbidden (§6.4).
func (c *Conn) streamErrorLocked(id uint32, code http2.ErrCode, reason string) error {
	c.countError("stream", code, reason)
	c.pushControl(control{kind: uint8(http2.FrameRSTStream), id: id, code: code})
	s := c.streams[id]
	if s == nil {
		c.closedIDs.mark(id, closedByUs)
		return nil
	}
	s.resetErr = http2.StreamError{StreamID: id, Code: code, Cause: fmt.Errorf("%s", reason)}
	s.removeLocked(closedByUs)
	if !s.answered {
		return c.earlyEndLocked()
	}
	return nil
}

// lateFrameLocked answers a DATA or HEADERS frame on a stream that no longer receives:
// discarded after our reset, else STREAM_CLOSED (§5.1 half-closed (remote), §6.1).
func (c *Conn) lateFrameLocked(id uint32, st streamState, s *Stream, what string) error {
	if s == nil && c.causeLocked(id) == closedByUs {
		return nil
	}
	return c.streamErrorLocked(id, http2.ErrCodeStreamClosed, fmt.Sprintf("%s on %v stream %d", what, st, id))
}

// connError is a connection error we detected; the peer is told its code in a GOAWAY.
func connError(code http2.ErrCode, format string, args ...any) error {
	return protocolError{code: code, reason: fmt.Sprintf(format, args...)}
}
