package hbone_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"

	"golang.org/x/net/http2"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// DATA frames of every size a peer may send (one byte up to our 1 MiB frame limit,
// larger than a receive-queue block), padded or not, reach the app whole and in order,
// whether it reads the stream with Read or with WriteTo (the proxies' way). The handler
// answers the SHA-256 of what it got.
func TestFramesOfEverySizeArriveInOrder(t *testing.T) {
	sizes := []int{1, 16384 - 9, 16384, 64 << 10, 64<<10 + 1, 200 << 10, 1 << 20}
	for _, mode := range []string{"Read", "WriteTo"} {
		t.Run(mode, func(t *testing.T) {
			ztest.NoLeaks(t)
			p := dialRaw(t, hbone.Settings{}, func(s *hbone.Stream) {
				s.Respond(200)
				h := sha256.New()
				if mode == "Read" {
					io.Copy(h, struct{ io.Reader }{s})
				} else {
					s.WriteTo(h)
				}
				s.Write(h.Sum(nil))
				s.CloseWrite()
			})
			p.connect(1)
			exp := sha256.New()
			for i, n := range sizes {
				data := bytes.Repeat([]byte{byte(i + 1)}, n)
				if i%3 == 2 { // padded: the framer's path
					exp.Write(data[:n-20])
					p.fr.WriteDataPadded(1, false, data[:n-20], make([]byte, 20))
				} else {
					exp.Write(data)
					p.fr.WriteData(1, false, data)
				}
			}
			p.fr.WriteData(1, true, nil)
			var got []byte
			p.await(func(f http2.Frame) bool {
				if d, ok := f.(*http2.DataFrame); ok && d.StreamID == 1 {
					got = append(got, d.Data()...)
				}
				return len(got) >= sha256.Size
			})
			if !bytes.Equal(got, exp.Sum(nil)) {
				t.Errorf("the app got other bytes than were sent")
			}
		})
	}
}
