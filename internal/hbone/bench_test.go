package hbone_test

import (
	"io"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
)

// BenchmarkStream moves 64 KiB writes through one HBONE stream over loopback TCP: the
// steady state of a bulk tunnel. It must not allocate per operation.
func BenchmarkStream(b *testing.B) { benchStream(b, 64<<10) }

// BenchmarkSmallFrames sends 512-byte writes, one DATA frame each: the per-frame cost
// of the read loop (state check, window accounting), as interactive tunnels pay it.
func BenchmarkSmallFrames(b *testing.B) { benchStream(b, 512) }

// benchStream writes size-byte buffers through one stream to a server that drains it.
func benchStream(b *testing.B, size int) {
	done := make(chan struct{})
	c := pairB(b, func(s *hbone.Stream) {
		s.Respond(200)
		io.Copy(io.Discard, s)
		s.CloseWrite()
		close(done)
	})
	st, err := openB(c)
	if err != nil {
		b.Fatal(err)
	}
	writeLoop(b, st, size)
	st.CloseWrite()
	<-done
	st.Close()
}

// BenchmarkStreamChurn opens a tunnel, sends one byte each way and closes it, on one
// connection: the stream table's cost per stream (open, half-close, closed memory).
func BenchmarkStreamChurn(b *testing.B) {
	c := pairB(b, func(s *hbone.Stream) {
		s.Respond(200)
		var one [1]byte
		io.ReadFull(s, one[:])
		s.Write(one[:])
		s.CloseWrite()
		io.Copy(io.Discard, s)
	})
	var one [1]byte
	b.ReportAllocs()
	for b.Loop() {
		st, err := openB(c)
		if err != nil {
			b.Fatal(err)
		}
		st.Write(one[:])
		st.CloseWrite()
		if _, err := io.ReadFull(st, one[:]); err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, st)
		st.Close()
	}
}

// writeLoop writes size-byte buffers to w for the benchmark's iterations.
func writeLoop(b *testing.B, w io.Writer, size int) {
	buf := make([]byte, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := w.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
}
