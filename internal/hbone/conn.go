package hbone

import (
	"bytes"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// Settings are one side's HTTP/2 parameters; zero values take Rust ztunnel's.
type Settings struct {
	StreamWindow      uint32        // initial stream receive window (4 MiB)
	ConnWindow        uint32        // connection receive window (16 MiB)
	MaxFrameSize      uint32        // largest frame we accept (1 MiB)
	MaxStreams        uint32        // concurrent streams we accept (server: 200)
	MaxHeaderListSize uint32        // request/response header bytes we accept (64 KiB)
	PingInterval      time.Duration // keepalive PING period (10 s)
	PingTimeout       time.Duration // a PING unanswered this long closes the connection (20 s)
	MaxQueuedControl  uint32        // answers (PING, SETTINGS ACK) queued for a peer not reading (10,000, x/net's)
	MaxEmptyData      uint32        // DATA frames in a row without payload or END_STREAM (100)
	ResetsPerSecond   uint32        // streams reset before their answer or refused, per second (MaxStreams)
	// CountError, when set, hears of every protocol error and flood this side detects:
	// scope "connection" (answered GOAWAY) or "stream" (RST_STREAM), the HTTP/2 code,
	// and what the peer did, as x/net's Server.CountError does, so that attacks show
	// in metrics. It is called from the read loop, sometimes under the connection's
	// lock: it must not block or call back into the Conn.
	CountError func(scope, code, reason string)
}

// WithDefaults fills the zero values with Rust ztunnel's, as a Conn does; the defaults
// test of the wiring compares them with the config loader's.
func (s Settings) WithDefaults() Settings {
	def := func(v *uint32, d uint32) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.StreamWindow, 4<<20)
	def(&s.ConnWindow, 16<<20)
	def(&s.MaxFrameSize, 1<<20)
	def(&s.MaxStreams, 200)
	def(&s.MaxHeaderListSize, 64<<10)
	def(&s.MaxQueuedControl, 10000)
	def(&s.MaxEmptyData, 100)
	def(&s.ResetsPerSecond, s.MaxStreams)
	if s.PingInterval == 0 {
		s.PingInterval = 10 * time.Second
	}
	if s.PingTimeout == 0 {
		s.PingTimeout = 20 * time.Second
	}
	return s
}

const initialWindow = 65535 // RFC 9113's window before SETTINGS

// Errors that end a whole connection.
var (
	ErrConnClosed = errors.New("HBONE connection closed")
	ErrGoAway     = errors.New("HBONE connection is going away")
	ErrPingFailed = errors.New("HBONE peer did not answer PING")
)

// Conn is one HTTP/2 connection carrying HBONE streams, as client or server.
type Conn struct {
	nc     net.Conn
	client bool
	local  Settings // immutable

	wmu sync.Mutex // serializes frame writes; guards fr's write side, henc, hbuf and batching
	// batch is the socket under TLS when it can gather records (mtls.Transport): frames
	// written under one hold of wmu then leave in one write(2). nil: none.
	batch    batcher
	batching bool // a batch is open (under wmu)
	fr       *http2.Framer
	henc     *hpack.Encoder
	hbuf     bytes.Buffer

	ctlMu    sync.Mutex // guards ctl, spare and ctlFlood: control frames queued by the read loop
	ctl      []control
	spare    []control
	ctlFlood bool // more than MaxQueuedControl frames waited: the peer does not read

	emptyData int // read loop only: DATA frames in a row that carried nothing

	mu          sync.Mutex // guards everything below, and every Stream's state
	streams     map[uint32]*Stream
	nextID      uint32 // client: next stream id to open
	lastPeerID  uint32 // server: highest stream id the peer opened
	active      int    // open streams we initiated (client) or accepted (server)
	handlers    int    // server: handlers running, reset streams' included
	resets      resetBudget
	peerMaxStr  uint32 // peer's SETTINGS_MAX_CONCURRENT_STREAMS
	peerFrame   uint32 // peer's SETTINGS_MAX_FRAME_SIZE: our largest DATA frame
	peerWindow  int32  // peer's SETTINGS_INITIAL_WINDOW_SIZE: new streams' send window
	sendWindow  int32  // connection-level send window
	recvUnacked uint32 // connection-level bytes consumed but not yet credited
	goAway      bool   // GOAWAY sent or received: no new streams
	draining    bool   // server: first drain GOAWAY sent, its PING not yet answered
	goAwaySent  bool   // a GOAWAY went out, naming goAwayID
	goAwayID    uint32 // the last stream id our GOAWAY named
	closedIDs   closedStreams
	recvWindow  int64 // connection receive window the peer may still fill (§6.9.1)
	encTable    int64 // peer's SETTINGS_HEADER_TABLE_SIZE not yet applied to henc; -1: none
	err         error // set once the connection is dead
	lastUse     time.Time
	pingSent    time.Time // zero when no PING is outstanding
	pingTimer   *time.Timer
	afterClose  []func()      // run once the read loop has ended (AfterClose)
	ended       bool          // the read loop's teardown has run
	closed      chan struct{} // closed when the read loop has ended
}

// batcher gathers what is written between Begin and Flush into one write.
type batcher interface {
	Begin()
	Flush() error
}

// batcherOf is the batcher under a TLS connection, if any.
func batcherOf(nc net.Conn) batcher {
	if tc, ok := nc.(interface{ NetConn() net.Conn }); ok {
		if b, ok := tc.NetConn().(batcher); ok {
			return b
		}
	}
	return nil
}

func newConn(nc net.Conn, client bool, s Settings) *Conn {
	s = s.WithDefaults()
	c := &Conn{
		nc: nc, client: client, local: s, batch: batcherOf(nc),
		streams: map[uint32]*Stream{}, nextID: 1,
		peerMaxStr: 100, peerFrame: 16384, peerWindow: initialWindow, sendWindow: initialWindow,
		lastUse: time.Now(), closed: make(chan struct{}),
		recvWindow: int64(max(s.ConnWindow, initialWindow)), encTable: -1,
	}
	c.fr = http2.NewFramer(nc, nc)
	c.fr.SetReuseFrames()
	c.fr.SetMaxReadFrameSize(s.MaxFrameSize)
	c.fr.MaxHeaderListSize = s.MaxHeaderListSize
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	return c
}

// NewClientConn starts the client side over an established (TLS) connection: it sends
// the preface and our SETTINGS. Run must then be called to read.
func NewClientConn(nc net.Conn, s Settings) (*Conn, error) {
	c := newConn(nc, true, s)
	if _, err := io.WriteString(nc, http2.ClientPreface); err != nil {
		return nil, err
	}
	if err := c.writeSettings(http2.Setting{ID: http2.SettingEnablePush, Val: 0}); err != nil {
		return nil, err
	}
	return c, nil
}

// NewServerConn reads the client's preface and sends our SETTINGS; Serve then runs it.
func NewServerConn(nc net.Conn, s Settings) (*Conn, error) {
	c := newConn(nc, false, s)
	buf := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(nc, buf); err != nil {
		return nil, err
	}
	if string(buf) != http2.ClientPreface {
		return nil, errors.New("not an HTTP/2 client preface")
	}
	if err := c.writeSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: c.local.MaxStreams}); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Conn) writeSettings(extra http2.Setting) error {
	c.wmu.Lock()
	defer c.unlockW()
	err := c.fr.WriteSettings(extra,
		http2.Setting{ID: http2.SettingInitialWindowSize, Val: c.local.StreamWindow},
		http2.Setting{ID: http2.SettingMaxFrameSize, Val: c.local.MaxFrameSize},
		http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: c.local.MaxHeaderListSize})
	if err == nil && c.local.ConnWindow > initialWindow {
		err = c.fr.WriteWindowUpdate(0, c.local.ConnWindow-initialWindow)
	}
	return err
}

// RemoteAddr and LocalAddr are the underlying connection's.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }
func (c *Conn) LocalAddr() net.Addr  { return c.nc.LocalAddr() }

// Close ends the connection and every stream on it.
func (c *Conn) Close() error { return c.nc.Close() }

// CloseWithError ends the connection as Close does, and err becomes Err and every open
// stream's error, so their owners can tell why (a revoked peer's CERT_REVOKED).
func (c *Conn) CloseWithError(err error) error { return c.fail(err) }

// AfterClose runs f once the connection has ended (at once if it has), on the goroutine
// that ended it; f must not block.
func (c *Conn) AfterClose(f func()) {
	c.mu.Lock()
	if c.ended {
		c.mu.Unlock()
		f()
		return
	}
	c.afterClose = append(c.afterClose, f)
	c.mu.Unlock()
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.closed }

// Err is why the connection ended, or nil while it lives.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// GoAway tells the peer no new streams will be accepted (drain); open ones go on, and
// the connection closes when the last of them ends. A server does it in two steps, as
// RFC 9113 §6.8 advises and Rust's h2 does (graceful_shutdown): GOAWAY naming 2^31-1
// and a PING; streams the client opened before it heard are still served, and once
// the PING's answer proves the GOAWAY arrived, a second GOAWAY names the last stream
// taken. A client, which the server opens no streams to, needs only one.
func (c *Conn) GoAway() error {
	c.mu.Lock()
	if c.goAway || c.draining {
		c.mu.Unlock()
		return nil
	}
	last := uint32(1<<31 - 1)
	if c.client {
		c.goAway = true
		last = 0
	} else {
		c.draining = true
	}
	c.goAwaySent, c.goAwayID = true, last
	c.mu.Unlock()
	c.wmu.Lock()
	err := c.fr.WriteGoAway(last, http2.ErrCodeNo, nil)
	if err == nil && !c.client {
		err = c.fr.WritePing(false, drainPing)
	}
	c.unlockW()
	c.mu.Lock()
	c.closeIfDrainedLocked()
	c.mu.Unlock()
	return err
}

// drainPing is the payload of the PING that ends a server's first drain step.
var drainPing = [8]byte{'d', 'r', 'a', 'i', 'n'}

// drainedLocked takes the second drain step once the peer answered drainPing: no new
// stream after the last one taken.
func (c *Conn) drainedLocked() {
	if !c.draining || c.goAway {
		return
	}
	c.goAway = true
	c.pushControl(control{kind: uint8(http2.FrameGoAway), id: c.goAwayIDLocked(), code: http2.ErrCodeNo})
	c.closeIfDrainedLocked()
}

// closeIfDrainedLocked closes a connection that is going away once it carries no
// stream: nothing more can happen on it, and a drain must not wait for it.
func (c *Conn) closeIfDrainedLocked() {
	if c.goAway && c.active == 0 && c.err == nil {
		c.err = ErrGoAway
		go c.nc.Close() // not under c.mu: Close may block on a TLS close_notify write
	}
}

// Streams is the number of open streams.
func (c *Conn) Streams() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active
}

// writeHeaders encodes and writes a header block, splitting it into CONTINUATION
// frames when it exceeds the peer's frame size. Caller holds wmu.
func (c *Conn) writeHeadersLocked(id uint32, endStream bool, fields []hpack.HeaderField) error {
	c.mu.Lock()
	table := c.encTable
	c.encTable = -1
	c.mu.Unlock()
	if table >= 0 { // the peer's decoder table size (§6.5.2): the encoder signals it first
		c.henc.SetMaxDynamicTableSizeLimit(uint32(table))
	}
	c.hbuf.Reset()
	for _, f := range fields {
		if err := c.henc.WriteField(f); err != nil {
			return err
		}
	}
	block := c.hbuf.Bytes()
	max := int(c.frameSize())
	first := block[:min(len(block), max)]
	rest := block[len(first):]
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first,
		EndStream: endStream, EndHeaders: len(rest) == 0})
	for err == nil && len(rest) > 0 {
		n := min(len(rest), max)
		err = c.fr.WriteContinuation(id, n == len(rest), rest[:n])
		rest = rest[n:]
	}
	return err
}

func (c *Conn) frameSize() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.peerFrame
}

func (c *Conn) writeRST(id uint32, code http2.ErrCode) {
	c.wmu.Lock()
	defer c.unlockW()
	c.fr.WriteRSTStream(id, code)
}

func (c *Conn) writeWindowUpdates(streamID, streamInc, connInc uint32) {
	if streamInc == 0 && connInc == 0 {
		return
	}
	c.wmu.Lock()
	defer c.unlockW()
	if streamInc > 0 {
		c.fr.WriteWindowUpdate(streamID, streamInc)
	}
	if connInc > 0 {
		c.fr.WriteWindowUpdate(0, connInc)
	}
}
