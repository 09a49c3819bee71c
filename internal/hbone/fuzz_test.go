package hbone_test

import (
	"testing"

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
