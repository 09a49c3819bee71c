package hbone

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/net/http2"
)

// The handlers of frames other than HEADERS, each judging its frame against the
// stream's state first (states.go). They run on the read loop.

func (c *Conn) handle(f http2.Frame, accept func(*Stream)) error {
	switch f := f.(type) {
	case *http2.DataFrame:
		return c.onData(f)
	case *http2.MetaHeadersFrame:
		if accept != nil {
			return c.onRequest(f, accept)
		}
		return c.onResponse(f)
	case *http2.SettingsFrame:
		return c.onSettings(f)
	case *http2.WindowUpdateFrame:
		return c.onWindowUpdate(f)
	case *http2.RSTStreamFrame:
		return c.onReset(f)
	case *http2.PriorityFrame:
		return c.onPriority(f)
	case *http2.PingFrame:
		c.onPing(f)
	case *http2.GoAwayFrame:
		c.onGoAway(f)
	case *http2.PushPromiseFrame:
		return connError(http2.ErrCodeProtocol, "PUSH_PROMISE received, push is disabled")
	}
	return nil // frames of unknown types are discarded (§5.5)
}

// onData takes a DATA frame the fast path left to the framer: padded, empty, or on a
// stream that is not simply open.
func (c *Conn) onData(f *http2.DataFrame) error {
	if err := c.countEmptyData(f); err != nil {
		return err
	}
	data := f.Data()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.takeRecvWindowLocked(f.Length); err != nil {
		return err
	}
	pad := f.Length - uint32(len(data))
	c.recvUnacked += pad // padding is credited at once
	st, s := c.stateLocked(f.StreamID)
	switch st {
	case stateIdle:
		return connError(http2.ErrCodeProtocol, "DATA on idle stream %d", f.StreamID)
	case stateHalfClosedRemote, stateClosed:
		c.discardLocked(len(data))
		return c.lateFrameLocked(f.StreamID, st, s, "DATA")
	}
	if err := s.takeWindowLocked(f.Length); err != nil {
		return err
	}
	s.unacked += pad
	if reason := s.dataErrLocked(len(data), f.StreamEnded()); reason != "" {
		c.discardLocked(len(data))
		return c.streamErrorLocked(f.StreamID, http2.ErrCodeProtocol, reason)
	}
	s.recv.append(data)
	if f.StreamEnded() {
		s.recvEOF = true
	}
	s.cond.Broadcast()
	return nil
}

// takeRecvWindowLocked counts n received bytes against the connection window we
// advertised: a peer that sends beyond it breaks flow control (§6.9.1).
func (c *Conn) takeRecvWindowLocked(n uint32) error {
	c.recvWindow -= int64(n)
	if c.recvWindow < 0 {
		return connError(http2.ErrCodeFlowControl, "DATA beyond the connection's flow-control window")
	}
	return nil
}

// takeWindowLocked counts n received bytes against the stream's window. Sending past
// it is a connection error: the sender broke the contract for the whole connection.
func (s *Stream) takeWindowLocked(n uint32) error {
	s.recvWindow -= int64(n)
	if s.recvWindow < 0 {
		return connError(http2.ErrCodeFlowControl, "stream %d exceeded its flow-control window", s.id)
	}
	return nil
}

// dataErrLocked is why n bytes of DATA make the stream's message malformed (§8.1.1),
// or "": a response's content before its final status, or content that does not add
// up to the content-length the message declared.
func (s *Stream) dataErrLocked(n int, end bool) string {
	switch {
	case s.c.client && s.status == 0:
		return "DATA before the response's header section"
	case s.contentLen < 0:
		return ""
	case int64(n) > s.contentLen:
		return "DATA beyond the declared content-length"
	}
	s.contentLen -= int64(n)
	if end && s.contentLen != 0 {
		return "END_STREAM before the declared content-length"
	}
	return ""
}

// discardLocked gives back the connection window of n bytes no live stream holds:
// dropped on arrival, or left unread in a stream removed (which may still read them).
func (c *Conn) discardLocked(n int) {
	c.recvUnacked += uint32(n)
	if inc := c.takeConnCreditLocked(); inc > 0 {
		c.pushControl(control{kind: uint8(http2.FrameWindowUpdate), inc: inc})
	}
}

// takeConnCreditLocked returns a connection WINDOW_UPDATE's increment once half the
// window was consumed, and counts it as given.
func (c *Conn) takeConnCreditLocked() uint32 {
	if c.recvUnacked < c.local.ConnWindow/2 {
		return 0
	}
	inc := c.recvUnacked
	c.recvUnacked = 0
	c.recvWindow += int64(inc)
	return inc
}

func (c *Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.mu.Lock()
	err := f.ForeachSetting(c.applySettingLocked) // in order, nothing in between (§6.5.3)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.queueControl(control{kind: uint8(http2.FrameSettings)})
	return nil
}

// applySettingLocked checks one setting's value (§6.5.2) and applies it. Unknown
// settings are ignored.
func (c *Conn) applySettingLocked(st http2.Setting) error {
	if err := st.Valid(); err != nil {
		code := http2.ErrCodeProtocol
		var ce http2.ConnectionError
		if errors.As(err, &ce) {
			code = http2.ErrCode(ce)
		}
		return connError(code, "SETTINGS %v out of range", st)
	}
	switch st.ID {
	case http2.SettingEnablePush:
		if c.client && st.Val != 0 {
			return connError(http2.ErrCodeProtocol, "server set SETTINGS_ENABLE_PUSH to 1")
		}
	case http2.SettingHeaderTableSize:
		c.encTable = int64(st.Val)
	case http2.SettingMaxConcurrentStreams:
		c.peerMaxStr = st.Val
	case http2.SettingMaxFrameSize:
		c.peerFrame = st.Val
	case http2.SettingInitialWindowSize:
		delta := int64(st.Val) - int64(c.peerWindow)
		for _, s := range c.streams {
			if int64(s.sendWindow)+delta > 1<<31-1 {
				return connError(http2.ErrCodeFlowControl,
					"SETTINGS_INITIAL_WINDOW_SIZE %d takes stream %d's window over 2^31-1", st.Val, s.id)
			}
		}
		c.peerWindow = int32(st.Val)
		for _, s := range c.streams {
			s.sendWindow += int32(delta)
			s.cond.Broadcast()
		}
	}
	return nil
}

func (c *Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		if int64(c.sendWindow)+int64(f.Increment) > 1<<31-1 {
			return connError(http2.ErrCodeFlowControl, "WINDOW_UPDATE takes the connection window over 2^31-1")
		}
		c.sendWindow += int32(f.Increment)
		for _, s := range c.streams {
			s.cond.Broadcast()
		}
		return nil
	}
	st, s := c.stateLocked(f.StreamID)
	switch {
	case st == stateIdle:
		return connError(http2.ErrCodeProtocol, "WINDOW_UPDATE on idle stream %d", f.StreamID)
	case s == nil: // closed: it may have been in flight (§6.9)
		return nil
	case int64(s.sendWindow)+int64(f.Increment) > 1<<31-1:
		return c.streamErrorLocked(f.StreamID, http2.ErrCodeFlowControl,
			fmt.Sprintf("WINDOW_UPDATE takes stream %d's window over 2^31-1", f.StreamID))
	}
	s.sendWindow += int32(f.Increment)
	s.cond.Broadcast()
	return nil
}

// onReset ends a stream the peer reset. On a closed stream it is ignored, and never
// answered with another RST_STREAM (§5.4.2).
func (c *Conn) onReset(f *http2.RSTStreamFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, s := c.stateLocked(f.StreamID)
	switch {
	case st == stateIdle:
		return connError(http2.ErrCodeProtocol, "RST_STREAM on idle stream %d", f.StreamID)
	case s == nil:
		return nil
	}
	s.resetErr = http2.StreamError{StreamID: f.StreamID, Code: f.ErrCode}
	s.removeLocked(closedByPeer)
	if !s.answered {
		return c.earlyEndLocked()
	}
	return nil
}

// onPriority ignores priority signals (deprecated, §5.3.2) but not a stream made to
// depend on itself, a stream error (RFC 7540 §5.3.1, whose handling RFC 9113 keeps).
// On an idle stream, where RST_STREAM is forbidden, that is a connection error.
func (c *Conn) onPriority(f *http2.PriorityFrame) error {
	if f.StreamDep != f.StreamID {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st, s := c.stateLocked(f.StreamID)
	switch {
	case st == stateIdle:
		return connError(http2.ErrCodeProtocol, "PRIORITY makes idle stream %d depend on itself", f.StreamID)
	case s == nil:
		return nil
	}
	return c.streamErrorLocked(f.StreamID, http2.ErrCodeProtocol, fmt.Sprintf("stream %d depends on itself", f.StreamID))
}

func (c *Conn) onPing(f *http2.PingFrame) {
	if f.IsAck() {
		c.mu.Lock()
		c.pingSent = time.Time{}
		if f.Data == drainPing {
			c.drainedLocked()
		}
		c.mu.Unlock()
		return
	}
	c.queueControl(control{kind: uint8(http2.FramePing), ping: f.Data})
}

// onGoAway stops new streams. On a client, the streams above the last id the server
// names were not processed: they fail with ErrGoAway, which a caller may retry.
func (c *Conn) onGoAway(f *http2.GoAwayFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.goAway = true
	for id, s := range c.streams {
		if id > f.LastStreamID && c.client {
			s.resetErr = fmt.Errorf("%w: stream %d not processed", ErrGoAway, id)
			s.removeLocked(closedByUs)
		}
	}
	c.closeIfDrainedLocked()
}
