package mtls_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// tcpPair is a real loopback TCP connection: the client's end and the server's.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan net.Conn, 1)
	go func() { c, _ := l.Accept(); got <- c }()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s := <-got
	if s == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// countingConn counts the writes that reach the socket.
type countingConn struct {
	*net.TCPConn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) { c.writes.Add(1); return c.TCPConn.Write(p) }

// Between Begin and Flush, writes (TLS records, in production) reach the socket as one;
// outside a batch each goes at once, as the handshake and alerts need.
func TestTransportBatchesWrites(t *testing.T) {
	ztest.NoLeaks(t)
	c, s := tcpPair(t)
	cc := &countingConn{TCPConn: c}
	tr := mtls.NewTransport(cc)
	record := bytes.Repeat([]byte("r"), 16<<10)
	tr.Write([]byte("hello"))
	if n := cc.writes.Load(); n != 1 {
		t.Fatalf("a write outside a batch: %d writes, want 1 at once", n)
	}
	tr.Begin()
	for range 4 { // 64 KiB: what one batch holds
		tr.Write(record)
	}
	if n := cc.writes.Load(); n != 1 {
		t.Errorf("during the batch: %d writes reached the socket, want none yet", n-1)
	}
	if err := tr.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := cc.writes.Load(); n != 2 {
		t.Errorf("4 records in a batch: %d writes, want 1", n-1)
	}
	tr.Begin()
	for range 5 { // past the bound, what it holds goes first
		tr.Write(record)
	}
	tr.Flush()
	if n := cc.writes.Load(); n != 4 {
		t.Errorf("5 records in a batch of 4: %d writes, want 2", n-2)
	}
	got := make([]byte, 5+9*len(record))
	if _, err := io.ReadFull(s, got); err != nil || string(got[:5]) != "hello" || !bytes.Equal(got[5:21], record[:16]) {
		t.Errorf("the peer read %q…, %v", got[:21], err)
	}
}

// Reads hand out every byte in order however small the caller's buffer, end with EOF
// when the peer does, honour the read deadline, and hold no buffer once drained.
func TestTransportReads(t *testing.T) {
	ztest.NoLeaks(t)
	c, s := tcpPair(t)
	tr := mtls.NewTransport(s)
	want := make([]byte, 1<<20)
	for i := range want {
		want[i] = byte(i * 7)
	}
	go func() { c.Write(want); c.CloseWrite() }()
	var got bytes.Buffer
	p := make([]byte, 517) // what tls.Conn asks for a record's header and a bit
	for {
		n, err := tr.Read(p)
		got.Write(p[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read %d bytes, not the %d sent in order", got.Len(), len(want))
	}
	if tr.Buffered() != 0 {
		t.Errorf("%d bytes held after the end", tr.Buffered())
	}
	_, s2 := tcpPair(t)
	tr2 := mtls.NewTransport(s2)
	s2.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := tr2.Read(p); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read past the deadline: %v, want a timeout", err)
	}
}
