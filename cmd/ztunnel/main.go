// Command ztunnel is Istio's ambient-mesh node proxy. `ztunnel` or `ztunnel proxy` runs
// it; `ztunnel version` prints the build. Configuration comes from the environment.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/KimMachineGun/automemlimit/memlimit"

	"github.com/ztunnel-go/ztunnel/internal/admin"
	"github.com/ztunnel-go/ztunnel/internal/app"
	"github.com/ztunnel-go/ztunnel/internal/config"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/mtls"
	"github.com/ztunnel-go/ztunnel/internal/version"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: ztunnel [proxy|version|authz check|route check|dns check|help]
  proxy        run the proxy (default); configured by environment variables, see README.md
  version      print version, git revision and Go version
  authz check  ask a running ztunnel why a connection would be allowed or denied:
               ztunnel authz check --src <ip> [--src-id <spiffe id>] --dst <ip:port>
  route check  ask a running ztunnel where a connection would go (service, endpoint,
               waypoint) and why: ztunnel route check --src <ip> --dst <ip:port>
  dns check    ask a running ztunnel what its DNS proxy would answer a pod, and why:
               ztunnel dns check --src <ip> [--type AAAA] <name>
`

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "proxy"
	if len(args) > 0 {
		cmd = args[0]
	}
	switch cmd {
	case "proxy":
		return proxy(stderr)
	case "version":
		v := version.Get()
		fmt.Fprintf(stdout, "version: %s\ngit revision: %s\ngo version: %s\nbuild status: %s\ncrypto: %s\n",
			v.Version, v.GitRevision, v.GoVersion, v.BuildStatus, mtls.Provider())
		return 0
	case "authz":
		return admin.AuthzCommand(args[1:], stdout, stderr)
	case "dns":
		return admin.DNSCommand(args[1:], stdout, stderr)
	case "route":
		return admin.RouteCommand(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "ztunnel: unknown command %q\n%s", cmd, usage)
	return 2
}

func proxy(stderr io.Writer) int {
	cfg, err := config.Load(config.FromOS())
	if err != nil {
		fmt.Fprintf(stderr, "ztunnel: invalid configuration:\n%v\n", err)
		return 1
	}
	if cfg.WorkerThreadsSet {
		runtime.GOMAXPROCS(cfg.WorkerThreads)
	}
	log, levels, err := logging.New(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil { // config.Load already validated RUST_LOG
		fmt.Fprintf(stderr, "ztunnel: %v\n", err)
		return 1
	}
	if cfg.MemoryLimitRatio > 0 {
		// GOMEMLIMIT from the pod's memory limit: without it Go paces the heap by its own
		// growth only, and a burst of bulk streams can take the pod past its limit into
		// the OOM killer where a tighter collection would have kept it. No cgroup limit,
		// or one that cannot be read, leaves Go's default: nothing to report.
		memlimit.Set(memlimit.WithRatio(cfg.MemoryLimitRatio), memlimit.WithProvider(memlimit.FromCgroup)) //nolint:errcheck
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := app.New(cfg, log, levels).Run(ctx); err != nil {
		log.Error("ztunnel failed", "error", err)
		return 1
	}
	return 0
}
