package hbone_test

import (
	"io"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
)

// BenchmarkStream moves 64 KiB writes through one HBONE stream over loopback TCP: the
// steady state of a bulk tunnel. It must not allocate per operation.
func BenchmarkStream(b *testing.B) {
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
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := st.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	st.CloseWrite()
	<-done
	st.Close()
}
