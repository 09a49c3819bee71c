package hbone_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/ztunnel-go/ztunnel/internal/hbone"
)

// FuzzParseAuthority: any :authority a peer sends is parsed without panic, and what is
// accepted prints back to itself, so the dial target is exactly what was parsed.
func FuzzParseAuthority(f *testing.F) {
	for _, s := range []string{"10.0.0.1:80", "[::1]:8080", "echo.default.svc.cluster.local:80", "", ":80",
		"[::1", "1.2.3.4:99999", "a@1.2.3.4:80", "[fe80::1%eth0]:80", "1.2.3.4", "xn--bcher-kva.example:443"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := hbone.ParseAuthority(s)
		if err != nil {
			return
		}
		again, err := hbone.ParseAuthority(a.String())
		if err != nil || again != a {
			t.Errorf("%q parsed as %v, which reparses as %v, %v", s, a, again, err)
		}
		if !a.IsHostname() && !a.Addr.IsValid() {
			t.Errorf("%q accepted with neither an address nor a hostname", s)
		}
	})
}

// FuzzServerFrames: whatever frames a client sends after the preface, our server's
// state machine answers without panic and the connection ends with every goroutine of
// it, handlers included. The seeds are well-formed and ill-placed frames of each type.
func FuzzServerFrames(f *testing.F) {
	for _, seed := range frameSeeds(":method", "CONNECT", ":authority", "10.0.0.1:80") {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ours, theirs := net.Pipe()
		var wg sync.WaitGroup
		wg.Go(func() { io.Copy(io.Discard, theirs) })
		wg.Go(func() {
			theirs.Write(append([]byte(http2.ClientPreface), in...))
			theirs.Close()
		})
		sc, err := hbone.NewServerConn(ours, hbone.Settings{MaxFrameSize: 16384, StreamWindow: 65535, ConnWindow: 65535})
		if err == nil {
			sc.Serve(func(s *hbone.Stream) {
				s.Respond(200)
				io.Copy(io.Discard, s)
				s.CloseWrite()
			})
		}
		ours.Close()
		wg.Wait()
	})
}

// FuzzClientFrames: whatever a server answers, our client's state machine copes
// without panic, and the stream it opened and the connection end.
func FuzzClientFrames(f *testing.F) {
	for _, seed := range frameSeeds(":status", "200") {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		ours, theirs := net.Pipe()
		var wg sync.WaitGroup
		wg.Go(func() { io.Copy(io.Discard, theirs) })
		cc, err := hbone.NewClientConn(ours, hbone.Settings{MaxFrameSize: 16384, StreamWindow: 65535, ConnWindow: 65535})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { cc.Run() })
		wg.Go(func() {
			theirs.Write(in)
			theirs.Close()
		})
		cc.TryReserve(1)
		if st, err := cc.OpenStream(context.Background(), &hbone.Request{Authority: "10.0.0.1:80"}); err == nil {
			io.Copy(io.Discard, st)
			st.Close()
		}
		ours.Close()
		wg.Wait()
	})
}

// frameSeeds are frame sequences a fuzzer starts from, with fields as the header
// block: a tunnel's life, and frames of every type where the RFC forbids them.
func frameSeeds(fields ...string) [][]byte {
	var seeds [][]byte
	var buf bytes.Buffer
	fr := http2.NewFramer(&buf, nil)
	fr.AllowIllegalWrites = true
	var hbuf bytes.Buffer
	henc := hpack.NewEncoder(&hbuf)
	for i := 0; i+1 < len(fields); i += 2 {
		henc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
	}
	block := hbuf.Bytes()
	for _, write := range []func(){
		func() {
			fr.WriteSettings()
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: true})
			fr.WriteData(1, false, []byte("hello"))
			fr.WriteData(1, true, nil)
		},
		func() { fr.WriteData(3, false, []byte("idle")) },
		func() {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: true, EndStream: true})
			fr.WriteData(1, false, []byte("late"))
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: true})
		},
		func() {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndHeaders: true})
			fr.WriteRSTStream(1, http2.ErrCodeCancel)
			fr.WriteWindowUpdate(1, 1<<31-1)
			fr.WritePriority(1, http2.PriorityParam{StreamDep: 1})
		},
		func() {
			fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 30},
				http2.Setting{ID: http2.SettingMaxFrameSize, Val: 1 << 20})
			fr.WritePing(false, [8]byte{1})
			fr.WriteWindowUpdate(0, 1<<30)
			fr.WriteGoAway(0, http2.ErrCodeNo, nil)
		},
		func() {
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:len(block)/2]})
			fr.WriteContinuation(1, true, block[len(block)/2:])
			fr.WriteRawFrame(http2.FramePriority, 0, 1, []byte{0, 0, 0})
		},
	} {
		buf.Reset()
		write()
		seeds = append(seeds, bytes.Clone(buf.Bytes()))
	}
	return seeds
}
