package hbone

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/net/http2"
)

// Handler serves one accepted CONNECT stream; it must Respond, then use the stream.
type Handler func(*Stream)

// Run reads the client connection until it ends; the pool runs it in a goroutine.
func (c *Conn) Run() error {
	c.startPings()
	return c.teardown(c.readLoop(nil))
}

// Serve reads the server connection, running h for every new stream. It returns when the
// connection has ended and every handler has returned.
func (c *Conn) Serve(h Handler) error {
	var wg sync.WaitGroup
	c.startPings()
	err := c.readLoop(func(s *Stream) {
		wg.Go(func() {
			defer c.handlerDone()
			if s.req.tooLarge {
				s.Respond(431) // RFC 9113 §10.5.1: the header list exceeded our limit
				return
			}
			h(s)
		})
	})
	err = c.teardown(err)
	wg.Wait()
	return err
}

func (c *Conn) readLoop(accept func(*Stream)) error {
	for {
		f, err := c.readFrame()
		if f == nil && err == nil {
			c.tryFlushControl() // window updates for bytes the read loop delivered itself
			continue            // a DATA frame went straight into its stream
		}
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) { // ours to detect: the peer is told with RST_STREAM
				c.countError("stream", se.Code)
				c.queueControl(control{kind: uint8(http2.FrameRSTStream), id: se.StreamID, code: se.Code})
				err = c.streamError(se.StreamID, se.Code)
			}
			if err == nil {
				continue
			}
			if code, ok := goAwayCode(err); ok {
				c.goAwayAndLinger(code)
			}
			return err
		}
		if err := c.handle(f, accept); err != nil || c.controlFlooded() {
			if err == nil {
				err = ErrFlood
			}
			code, ok := goAwayCode(err)
			if !ok {
				code = http2.ErrCodeProtocol
			}
			c.goAwayAndLinger(code)
			return err
		}
		c.tryFlushControl() // what handling queued under c.mu, such as a reset stream's credit
	}
}

// readFrame returns the next frame the framer parses, or nil and no error when a
// DATA frame's payload went straight into its stream's buffer.
func (c *Conn) readFrame() (http2.Frame, error) {
	fh, err := c.fr.ReadFrameHeader()
	if err != nil {
		return nil, err
	}
	if fastData(fh) {
		handled, err := c.readData(fh)
		if err != nil {
			return nil, err
		}
		if handled {
			return nil, nil
		}
	}
	return c.fr.ReadFrameForHeader(fh)
}

// protocolError is a connection error we detected; the peer is told its code in a GOAWAY.
type protocolError struct {
	code   http2.ErrCode
	reason string
}

func (e protocolError) Error() string { return fmt.Sprintf("%v: %s", e.code, e.reason) }

// goAwayCode is the GOAWAY code for a connection-ending read error, if the peer broke
// the protocol (rather than the connection breaking).
func goAwayCode(err error) (http2.ErrCode, bool) {
	var pe protocolError
	var ce http2.ConnectionError
	switch {
	case errors.Is(err, ErrFlood):
		return http2.ErrCodeEnhanceYourCalm, true
	case errors.As(err, &pe):
		return pe.code, true
	case errors.As(err, &ce):
		return http2.ErrCode(ce), true
	case errors.Is(err, http2.ErrFrameTooLarge):
		return http2.ErrCodeFrameSize, true
	}
	return 0, false
}

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
		return c.streamError(f.StreamID, f.ErrCode)
	case *http2.PingFrame:
		c.onPing(f)
	case *http2.GoAwayFrame:
		c.onGoAway(f)
	case *http2.PushPromiseFrame:
		return errors.New("PUSH_PROMISE received, push is disabled")
	}
	return nil // PRIORITY and unknown frames are ignored, as RFC 9113 allows
}

func (c *Conn) onData(f *http2.DataFrame) error {
	if err := c.countEmptyData(f); err != nil {
		return err
	}
	data := f.Data()
	c.mu.Lock()
	c.recvUnacked += f.Length - uint32(len(data)) // padding is credited at once
	s := c.streams[f.StreamID]
	if s == nil || s.recvEOF {
		// Closed stream: give the connection window back and forget the bytes.
		c.recvUnacked += uint32(len(data))
		inc := c.takeConnCreditLocked()
		c.mu.Unlock()
		if inc > 0 {
			c.queueControl(control{kind: uint8(http2.FrameWindowUpdate), inc: inc})
		}
		return nil
	}
	if len(s.rbuf)-s.roff+len(data) > int(c.local.StreamWindow)+int(c.local.MaxFrameSize) {
		c.mu.Unlock()
		return protocolError{http2.ErrCodeFlowControl,
			fmt.Sprintf("stream %d exceeded its flow-control window", f.StreamID)}
	}
	s.rbuf = append(s.rbuf, data...)
	if f.StreamEnded() {
		s.recvEOF = true
	}
	s.cond.Broadcast()
	c.mu.Unlock()
	return nil
}

func (c *Conn) takeConnCreditLocked() uint32 {
	if c.recvUnacked < c.local.ConnWindow/2 {
		return 0
	}
	inc := c.recvUnacked
	c.recvUnacked = 0
	return inc
}

func (c *Conn) onSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	c.mu.Lock()
	err := f.ForeachSetting(func(st http2.Setting) error {
		switch st.ID {
		case http2.SettingMaxConcurrentStreams:
			c.peerMaxStr = st.Val
		case http2.SettingMaxFrameSize:
			c.peerFrame = st.Val
		case http2.SettingInitialWindowSize:
			delta := int32(st.Val) - c.peerWindow
			c.peerWindow = int32(st.Val)
			for _, s := range c.streams {
				s.sendWindow += delta
				s.cond.Broadcast()
			}
		}
		return nil
	})
	c.mu.Unlock()
	if err != nil {
		return err
	}
	c.queueControl(control{kind: uint8(http2.FrameSettings)})
	return nil
}

func (c *Conn) onWindowUpdate(f *http2.WindowUpdateFrame) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f.StreamID == 0 {
		if int64(c.sendWindow)+int64(f.Increment) > 1<<31-1 {
			return errors.New("connection flow-control window overflow")
		}
		c.sendWindow += int32(f.Increment)
		for _, s := range c.streams {
			s.cond.Broadcast()
		}
		return nil
	}
	if s := c.streams[f.StreamID]; s != nil {
		s.sendWindow += int32(f.Increment)
		s.cond.Broadcast()
	}
	return nil
}

// streamError ends one stream (RST_STREAM received, or a stream-level protocol error).
// A stream ended before we answered it draws on the reset budget: ErrFlood when spent.
func (c *Conn) streamError(id uint32, code http2.ErrCode) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[id]
	if s == nil {
		return nil
	}
	s.resetErr = http2.StreamError{StreamID: id, Code: code}
	s.removeLocked()
	if !s.answered {
		return c.earlyEndLocked()
	}
	return nil
}

func (c *Conn) onPing(f *http2.PingFrame) {
	if f.IsAck() {
		c.mu.Lock()
		c.pingSent = time.Time{}
		c.mu.Unlock()
		return
	}
	c.queueControl(control{kind: uint8(http2.FramePing), ping: f.Data})
}

func (c *Conn) onGoAway(f *http2.GoAwayFrame) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.goAway = true
	for id, s := range c.streams {
		if id > f.LastStreamID && c.client {
			s.resetErr = fmt.Errorf("%w: stream %d not processed", ErrGoAway, id)
			s.removeLocked()
		}
	}
	c.closeIfDrainedLocked()
}

// startPings sends a PING every interval; one unanswered for the timeout ends the
// connection, so a silent peer is noticed.
func (c *Conn) startPings() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pingTimer = time.AfterFunc(c.local.PingInterval, c.ping)
}

func (c *Conn) ping() {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if !c.pingSent.IsZero() && time.Since(c.pingSent) >= c.local.PingTimeout {
		c.mu.Unlock()
		c.fail(ErrPingFailed)
		return
	}
	send := c.pingSent.IsZero()
	if send {
		c.pingSent = time.Now()
	}
	c.pingTimer.Reset(c.local.PingInterval)
	c.mu.Unlock()
	if send {
		c.wmu.Lock()
		c.fr.WritePing(false, [8]byte{'z', 't', 'u', 'n', 'n', 'e', 'l'})
		c.unlockW()
	}
}

// fail ends the connection with err (a write error, a missed PING) and returns err.
func (c *Conn) fail(err error) error {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.mu.Unlock()
	c.nc.Close()
	return err
}

// teardown runs when the read loop ends: every stream fails, waiters wake up. It
// returns why the connection ended: the reason fail recorded (a missed PING, a write
// error), which made the read fail, or else the read loop's error.
func (c *Conn) teardown(err error) error {
	c.mu.Lock()
	if c.err == nil {
		c.err = fmt.Errorf("%w: %v", ErrConnClosed, err)
	} else {
		err = c.err
	}
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
	for _, s := range c.streams {
		if s.resetErr == nil {
			s.resetErr = c.err
		}
		s.removeLocked()
	}
	c.mu.Unlock()
	c.nc.Close()
	close(c.closed)
	return err
}
