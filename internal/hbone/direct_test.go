package hbone_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// fickleSink takes some writes from the read loop in full, some in part, some not at
// all (a socket with a full buffer), and everything WriteTo gives it.
type fickleSink struct {
	mu     sync.Mutex
	got    bytes.Buffer
	rng    *rand.Rand
	direct int
}

func (f *fickleSink) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got.Write(p)
}

func (f *fickleSink) TryWrite(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	switch f.rng.IntN(3) {
	case 0:
		n = len(p)
	case 1:
		n = f.rng.IntN(len(p) + 1)
	}
	f.direct += n
	f.got.Write(p[:n])
	return n, nil
}

// Bytes the read loop delivers itself and bytes WriteTo writes interleave into exactly
// what was sent, in order, once each, and WriteTo counts them all.
func TestDirectDeliveryKeepsOrder(t *testing.T) {
	ztest.NoLeaks(t)
	sink := &fickleSink{rng: rand.New(rand.NewPCG(1, 2))}
	done := make(chan int64, 1)
	c := pair(t, hbone.Settings{}, func(s *hbone.Stream) {
		s.Respond(200)
		n, _ := s.WriteTo(sink)
		done <- n
		s.CloseWrite()
	})
	st, err := open(t, c, "10.0.0.1:80")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var sent bytes.Buffer
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		chunk := make([]byte, 1+rng.IntN(3000))
		for i := range chunk {
			chunk[i] = byte(rng.Uint32())
		}
		sent.Write(chunk)
		st.Write(chunk)
	}
	st.CloseWrite()
	n := <-done
	io.Copy(io.Discard, st)
	if !bytes.Equal(sink.got.Bytes(), sent.Bytes()) {
		t.Fatalf("the app got %d bytes that differ from the %d sent", sink.got.Len(), sent.Len())
	}
	if n != int64(sent.Len()) {
		t.Errorf("WriteTo counted %d of %d bytes", n, sent.Len())
	}
	if sink.direct == 0 {
		t.Error("the read loop never delivered directly")
	}
	t.Logf("%d of %d bytes delivered by the read loop", sink.direct, sent.Len())
}
