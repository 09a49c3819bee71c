// Package internal_test holds the import rules of the house: which floor may reach
// which, checked on the real import graph (`go list`), as tailscale's depaware does.
package internal_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

const module = "github.com/ztunnel-go/ztunnel/"

// pkg is one package of the module: its direct imports and everything it depends on,
// with the module prefix cut.
type pkg struct{ imports, deps []string }

func graph(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \",\"}}|{{join .Deps \",\"}}", "./...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	g := map[string]pkg{}
	trim := func(list string) []string {
		var out []string
		for _, p := range strings.Split(list, ",") {
			if p != "" {
				out = append(out, strings.TrimPrefix(p, module))
			}
		}
		return out
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		g[strings.TrimPrefix(f[0], module)] = pkg{imports: trim(f[1]), deps: trim(f[2])}
	}
	return g
}

// ioPackages is what a package that only computes must not reach: sockets' options and
// namespaces, processes, gRPC, HTTP servers.
var ioPackages = []string{"net/http", "google.golang.org/grpc", "golang.org/x/sys/unix", "os/exec", "internal/sockopt", "internal/netns"}

// noIO are the floors that decide without doing I/O (hbone speaks HTTP/2 over a
// net.Conn it is given, so x/net's http2 brings net/http along; it still opens nothing).
var noIO = map[string][]string{
	"internal/state":    ioPackages,
	"internal/identity": ioPackages,
	"internal/rbac":     ioPackages,
	"internal/route":    ioPackages,
	"internal/hbone":    {"google.golang.org/grpc", "golang.org/x/sys/unix", "os/exec", "internal/sockopt", "internal/netns"},
}

// wiring are the rooms only app puts together.
var wiring = []string{"internal/proxy", "internal/xds", "internal/inpod", "internal/admin"}

// configReaders may import config: app maps it to every component's options, admin
// shows it (/config_dump's config), cmd loads it. A component that read it would have
// a second mapping, and defaults in two places.
var configReaders = []string{"internal/app", "internal/admin", "cmd/ztunnel"}

// allowed are the imports of a wiring room from elsewhere that stand today, each with
// its reason; the test fails when one is gone, so that the list stays true.
var allowed = map[string]string{
	"cmd/ztunnel -> internal/admin": "the `ztunnel authz`, `route` and `dns` commands are clients of the admin port",
}

func TestImportRules(t *testing.T) {
	ztest.NoLeaks(t)
	g := graph(t)
	for name, banned := range noIO {
		p, ok := g[name]
		if !ok {
			t.Errorf("%s is gone: update the rules", name)
		}
		for _, b := range banned {
			if slices.ContainsFunc(p.deps, func(d string) bool { return d == b }) {
				t.Errorf("%s reaches %s: it must decide without I/O", name, b)
			}
		}
	}
	seen := map[string]bool{}
	for name, p := range g {
		for _, imp := range p.imports {
			edge := name + " -> " + imp
			switch {
			case imp == "internal/app" && name != "cmd/ztunnel":
				t.Errorf("%s: only cmd/ztunnel imports app", edge)
			case imp == "internal/config" && !slices.Contains(configReaders, name):
				t.Errorf("%s: only %v read the config; take options from app", edge, configReaders)
			case slices.Contains(wiring, imp) && name != "internal/app":
				if _, ok := allowed[edge]; !ok {
					t.Errorf("%s: only app wires %s", edge, imp)
				}
				seen[edge] = true
			}
		}
	}
	for edge, why := range allowed {
		if !seen[edge] {
			t.Errorf("%s (%s) no longer stands: drop it from the allowed list", edge, why)
		}
	}
}

// The image's binary (built with deploy/image's tags) links no package that only
// tracing or templating would run: html/template's reflection alone keeps every
// exported method of every type, 4.5 MB of binary that is also resident memory.
func TestShippedBinaryLinksNoTemplates(t *testing.T) {
	ztest.NoLeaks(t)
	cmd := exec.Command("go", "list", "-tags", "grpcnotrace", "-deps", "./cmd/ztunnel")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p == "html/template" || p == "text/template" || p == "golang.org/x/net/trace" {
			t.Errorf("the ztunnel binary links %s (a new import of it, or a build without -tags grpcnotrace)", p)
		}
	}
}
