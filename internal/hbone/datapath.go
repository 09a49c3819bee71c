package hbone

import (
	"io"
	"sync"

	"golang.org/x/net/http2"
)

// The data path skips the framer's buffers on both sides: a DATA frame's payload is
// read from the TLS connection straight into the stream's receive buffer, and a frame
// to send is built in place, its header written over the 9 bytes before the payload.
// Each saves one memmove of every byte carried; the framer still handles every other
// frame and every padded DATA frame.

// maxRecordPayload keeps a DATA frame, header included, within one 16 KiB TLS record:
// a 16,393-byte frame would cost a second, 9-byte record and write.
const maxRecordPayload = 16<<10 - frameHeaderLen

const frameHeaderLen = 9

// Send buffers start at one record and grow once a stream has sent a lot: most
// tunnels are short, bulk ones read the app socket in fewer, larger reads.
const (
	smallSendBuf = 16 << 10
	largeSendBuf = 256 << 10
	growAfter    = 1 << 20
)

var (
	smallSendPool = sync.Pool{New: func() any { b := make([]byte, smallSendBuf); return &b }}
	largeSendPool = sync.Pool{New: func() any { b := make([]byte, largeSendBuf); return &b }}
)

// fastData reports whether a DATA frame can be read straight into a stream's buffer:
// not padded (the padding length comes first), and on a stream that is not 0 (a
// protocol error the framer reports).
func fastData(fh http2.FrameHeader) bool {
	return fh.Type == http2.FrameData && fh.StreamID != 0 && fh.Length > 0 &&
		!fh.Flags.Has(http2.FlagDataPadded)
}

// readData reads one DATA frame's payload into its stream's receive queue. handled
// is false when the frame needs judging beyond flow control (the stream is not open
// for receiving, has a content-length to count, or is a response not yet answered):
// the caller reads it through the framer, and onData decides.
func (c *Conn) readData(fh http2.FrameHeader) (handled bool, err error) {
	n := int(fh.Length)
	c.emptyData = 0
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[fh.StreamID]
	if s == nil || s.recvEOF || s.contentLen >= 0 || (c.client && s.status == 0) {
		return false, nil
	}
	if err := c.takeRecvWindowLocked(fh.Length); err != nil {
		return true, err
	}
	if err := s.takeWindowLocked(fh.Length); err != nil {
		return true, err
	}
	if err := c.readPayloadLocked(s, n); err != nil || s.removed {
		return true, err
	}
	if fh.Flags.Has(http2.FlagDataEndStream) {
		s.recvEOF = true
	}
	if !s.deliverLocked(n) || s.recvEOF {
		// Wake the reader only when it has something to do: a frame the read loop
		// wrote to the app itself would only wake it to find nothing and sleep again,
		// a futex wake-up per message on each side.
		s.cond.Broadcast()
	}
	return true, nil
}

// readPayloadLocked reads n payload bytes from the connection into s's queue, a block
// at most at a time, with c.mu released while reading: only the read loop fills the
// queue, and nothing recycles the block being filled. Bytes of a stream reset
// meanwhile are read and their window given back to the connection.
func (c *Conn) readPayloadLocked(s *Stream, n int) error {
	for n > 0 {
		k := min(n, recvBlock)
		dst := s.recv.fill(k)
		c.mu.Unlock()
		_, err := io.ReadFull(c.nc, dst)
		c.mu.Lock()
		switch {
		case err != nil:
			s.recv.commit(0)
			return err
		case s.removed:
			s.recv.commit(0)
			c.discardLocked(k)
		default:
			s.recv.commit(k)
		}
		n -= k
	}
	return nil
}

// ReadFrom sends what r yields as DATA frames until r's EOF (nil) or an error. The
// frames are built in the read buffer itself, so the bytes are not copied on the way
// to TLS. It does not half-close: CloseWrite does.
func (s *Stream) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	bp, pool := smallSendPool.Get().(*[]byte), &smallSendPool
	defer func() { pool.Put(bp) }()
	for {
		nr, rerr := r.Read((*bp)[frameHeaderLen:])
		if nr > 0 {
			if err := s.sendFramed((*bp)[:frameHeaderLen+nr]); err != nil {
				return total, err
			}
			total += int64(nr)
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
		if pool == &smallSendPool && total >= growAfter {
			pool.Put(bp)
			bp, pool = largeSendPool.Get().(*[]byte), &largeSendPool
		}
	}
}

// sendFramed sends b[9:] as DATA frames. Each frame's header is written over the 9
// bytes before its payload: the buffer's spare head for the first, already sent bytes
// for the next ones.
// The frames whose window is there go out under one hold of the write lock: in one
// write(2) when the transport gathers TLS records.
func (s *Stream) sendFramed(b []byte) error {
	payload := len(b) - frameHeaderLen
	for off := 0; off < payload; {
		n, err := s.reserve(payload-off, false) // waits for some window, takes all there is
		if err != nil {
			return err
		}
		s.c.wmu.Lock()
		if n > maxRecordPayload {
			s.c.beginBatchLocked()
		}
		for end := off + n; off < end && err == nil; {
			m := min(end-off, maxRecordPayload)
			frame := b[off : off+frameHeaderLen+m]
			putDataHeader(frame, m, s.id)
			_, err = s.c.nc.Write(frame)
			off += m
		}
		s.c.unlockW()
		if err != nil {
			return s.c.fail(err)
		}
	}
	return nil
}

// putDataHeader writes a DATA frame header (RFC 9113 §4.1) with no flags.
func putDataHeader(b []byte, length int, id uint32) {
	b[0], b[1], b[2] = byte(length>>16), byte(length>>8), byte(length)
	b[3], b[4] = byte(http2.FrameData), 0
	b[5], b[6], b[7], b[8] = byte(id>>24&0x7f), byte(id>>16), byte(id>>8), byte(id)
}
