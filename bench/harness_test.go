//go:build linux

// Package bench is the end-to-end benchmark harness: client pod → ztunnel → HBONE →
// ztunnel → server pod in network namespaces, against baselines measured in the same
// run. It measures; it never passes or fails on a figure. Run it with bench/run.
package bench

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// metric names, in the report's order.
const (
	upGbps   = "throughput client→server, 1 stream (Gbit/s)"
	downGbps = "throughput server→client, 1 stream (Gbit/s)"
	p8Gbps   = "throughput client→server, 8 streams (Gbit/s)"
	p100Gbps = "throughput client→server, 100 streams (Gbit/s)"
	p100RSS  = "peak RSS of the proxies, 100 streams (MB)"
	cpuGiB   = "proxy CPU per GiB, both ends (s)"
	p50      = "64 B request/response p50 (µs)"
	p99      = "64 B request/response p99 (µs)"
	cps1     = "new connections/s, c=1"
	cps8     = "new connections/s, c=8"
	connP50  = "new connection at 1,000/s for 10 s: first byte p50 (µs)"
	connP99  = "new connection at 1,000/s for 10 s: first byte p99 (µs)"
	connCPU  = "vCPU per proxy at 1,000 new connections/s"
	connOK   = "new connection at 1,000/s for 10 s: answered (%)"
	idleKiB  = "memory per idle connection per end (KiB)"
	rateCPU  = "vCPU per proxy at 1,000 requests/s"
	rateRSS  = "RSS of the proxies at 1,000 requests/s (MB)"
	rateAnon = "  of it RssAnon: heap, stacks (MB)"
	rateFile = "  of it RssFile: mapped binary (MB)"
)

var metricOrder = []string{upGbps, downGbps, p8Gbps, p100Gbps, p100RSS, cpuGiB, p50, p99, cps1, cps8,
	connOK, connP50, connP99, connCPU, idleKiB, rateCPU, rateRSS, rateAnon, rateFile}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestHarness runs every scenario once per round, interleaved (A B C D, A B C D, …), so
// that a noisy neighbour hurts them all alike, and reports the medians.
func TestHarness(t *testing.T) {
	if os.Getenv("ZTUNNEL_BENCH") == "" {
		t.Skip("the end-to-end benchmark measures and does not pass or fail: run bench/run (as root)")
	}
	defer http.DefaultClient.CloseIdleConnections()
	rounds, secs := envInt("ZTUNNEL_BENCH_ROUNDS", 5), envInt("ZTUNNEL_BENCH_SECONDS", 3)
	h := newHarness(t)
	if hold := os.Getenv("ZTUNNEL_BENCH_HOLD"); hold != "" {
		h.hold(t, hold)
		return
	}
	results := map[string]map[string][]float64{} // scenario → metric → one value per round
	dnsResults := map[string]map[string][]float64{}
	for r := range rounds {
		for _, s := range h.scenarios {
			if results[s.name] == nil {
				results[s.name] = map[string][]float64{}
			}
			start := time.Now()
			for k, v := range h.round(t, s, secs) {
				results[s.name][k] = append(results[s.name][k], v)
			}
			t.Logf("round %d %s: %s", r+1, s.name, time.Since(start).Round(time.Millisecond))
		}
		for _, d := range h.dns {
			if dnsResults[d.name] == nil {
				dnsResults[d.name] = map[string][]float64{}
			}
			for k, v := range h.dnsRound(t, d) {
				dnsResults[d.name][k] = append(dnsResults[d.name][k], v)
			}
		}
	}
	names := make([]string, len(h.scenarios))
	for i, s := range h.scenarios {
		names[i] = s.name
	}
	med := medians(results)
	md := report(names, med, rounds, secs)
	var dnsNames []string
	for _, d := range h.dns {
		dnsNames = append(dnsNames, d.name)
	}
	md += dnsReport(dnsNames, medians(dnsResults))
	// The goals that do not hold, what the profiles say remains and what was tried: written
	// by hand after a run (it names its run), kept across runs.
	if notes, err := os.ReadFile("analysis.md"); err == nil {
		md += "\n" + string(notes)
	}
	os.Stdout.WriteString("\n" + md)
	if out := os.Getenv("ZTUNNEL_BENCH_OUT"); out != "" {
		png := strings.TrimSuffix(out, ".md") + ".png"
		md += "\n![ratios to the mTLS pipe](" + filepath.Base(png) + ")\n"
		if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
			t.Error(err)
		}
		if err := chart(png, med); err != nil {
			t.Error(err)
		}
	}
}

// hold keeps the bed up for measuring by hand (strace, perf, loadgen in a pod's netns)
// until the file it writes, which lists the scenarios, is removed; at most 30 min.
func (h *harness) hold(t *testing.T, file string) {
	var b strings.Builder
	fmt.Fprintf(&b, "loadgen %s\nztunnel netns %v\n", h.loadgen, h.ztunnelNS)
	for _, s := range h.scenarios {
		fmt.Fprintf(&b, "%s: client netns %s, iperf3 %s, echo %s\n", s.name, s.clientNS, s.iperf, s.echo)
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("holding the bed until %s is removed:\n%s", file, b.String())
	for end := time.Now().Add(30 * time.Minute); time.Now().Before(end); time.Sleep(time.Second) {
		if _, err := os.Stat(file); err != nil {
			return
		}
	}
}

// round measures one scenario once; a failed measurement is reported and left out.
func (h *harness) round(t *testing.T, s scenario, secs int) map[string]float64 {
	m := map[string]float64{}
	h.throughput(t, s, secs, m)
	stop := h.profile(t, s, "latency")
	r, err := h.loadgenRun(s, "-mode", "rr", "-addr", s.echo, "-n", "2000", "-size", "64")
	stop()
	if err == nil {
		m[p50], m[p99] = r["p50_us"], r["p99_us"]
	} else {
		t.Errorf("%s: %v", s.name, err)
	}
	for c, key := range map[string]string{"1": cps1, "8": cps8} {
		stop := h.profile(t, s, "connections"+c)
		r, err := h.loadgenRun(s, "-mode", "cps", "-addr", s.echo, "-c", c, "-d", "2s")
		stop()
		if err == nil && r["failed"] == 0 {
			m[key] = r["per_second"]
		} else {
			t.Errorf("%s: c=%s: %v %v", s.name, c, err, r)
		}
	}
	// After the latency phase: a burst leaves a Go proxy collecting and returning memory
	// for seconds, which the latency figures would otherwise measure.
	h.manyStreams(t, s, secs, m)
	if s.cpu != nil { // before the idle connections inflate the memory figure
		h.atFixedRate(t, s, m)
	}
	if s.rss != nil {
		m[idleKiB] = h.idleRSS(t, s, 1000) / 1024
	}
	// Last, and followed by a pause until the proxies are quiet: a baseline that cannot
	// take 1,000 TLS handshakes a second is still working through its backlog when
	// loadgen gives up, and would charge it to the next phase or scenario.
	h.connectionRate(t, s, m)
	settle(s.cpu)
	return m
}

// settle waits, for up to 20 s, until the proxies use under a tenth of a CPU.
func settle(cpu func() float64) {
	if cpu == nil {
		return
	}
	for range 40 {
		before := cpu()
		time.Sleep(500 * time.Millisecond)
		if cpu()-before < 0.05 {
			return
		}
	}
}

// throughput runs the iperf3 phases: one stream each way (with the proxies' CPU per
// GiB on the upload) and 8 streams.
func (h *harness) throughput(t *testing.T, s scenario, secs int, m map[string]float64) {
	cpu := func() float64 {
		if s.cpu == nil {
			return 0
		}
		return s.cpu()
	}
	before := cpu()
	stop := h.profile(t, s, "throughput")
	gbps, bytes, err := iperf(s, secs)
	stop()
	if err != nil {
		t.Errorf("%s: %v", s.name, err)
	} else {
		m[upGbps] = gbps
		if s.cpu != nil {
			m[cpuGiB] = (cpu() - before) / (bytes / (1 << 30))
		}
	}
	if gbps, _, err := iperf(s, secs, "-R"); err == nil {
		m[downGbps] = gbps
	} else {
		t.Errorf("%s: %v", s.name, err)
	}
	if gbps, _, err := iperf(s, secs, "-P", "8"); err == nil {
		m[p8Gbps] = gbps
	} else {
		t.Errorf("%s: %v", s.name, err)
	}
}

// manyStreams runs 100 iperf3 streams at once and records the proxies' peak memory.
func (h *harness) manyStreams(t *testing.T, s scenario, secs int, m map[string]float64) {
	peak := peakOf(s.rss)
	gbps, _, err := iperf(s, secs, "-P", "100")
	if mb := peak() / 1e6; mb > 0 {
		m[p100RSS] = mb
	}
	if err == nil {
		m[p100Gbps] = gbps
	} else {
		t.Errorf("%s: 100 streams: %v", s.name, err)
	}
}

// connectionRate opens 1,000 connections per second for 10 s, open loop, and records
// the time each waited for its first echoed byte and the proxies' CPU.
func (h *harness) connectionRate(t *testing.T, s scenario, m map[string]float64) {
	const secs = 10
	var before float64
	if s.cpu != nil {
		before = s.cpu()
	}
	start := time.Now()
	r, err := h.loadgenRun(s, "-mode", "connrate", "-addr", s.echo, "-r", "1000", "-d", strconv.Itoa(secs)+"s")
	if err != nil {
		t.Errorf("%s: 1,000 connections/s: %v", s.name, err)
		return
	}
	if r["failed"] > 0 {
		t.Logf("%s: 1,000 connections/s: %.0f of %d failed, %.0f/s answered", s.name, r["failed"], 1000*secs, r["per_second"])
	}
	m[connOK] = 100 * (1 - r["failed"]/(1000*secs))
	m[connP50], m[connP99] = r["p50_us"], r["p99_us"]
	if s.cpu != nil {
		m[connCPU] = (s.cpu() - before) / time.Since(start).Seconds() / 2
	}
}

// peakOf samples rss every 100 ms until the returned function is called, which gives
// the highest sample (0 when rss is nil).
func peakOf(rss func() float64) func() float64 {
	if rss == nil {
		return func() float64 { return 0 }
	}
	done, result := make(chan struct{}), make(chan float64)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		high := rss()
		for {
			select {
			case <-tick.C:
				high = max(high, rss())
			case <-done:
				result <- max(high, rss())
				return
			}
		}
	}()
	return func() float64 { close(done); return <-result }
}

// profile takes CPU profiles of both ztunnels during one phase (ZTUNNEL_BENCH_PROFILE:
// throughput, latency, connections1 or connections8; default throughput), when
// ZTUNNEL_BENCH_CPUPROFILE names a file: <file>.1 is the client side's, <file>.2 the
// server side's, from their admin ports (/debug/pprof/profile) for the phase's
// ZTUNNEL_BENCH_SECONDS. The last round's win.
func (h *harness) profile(t *testing.T, s scenario, phase string) func() {
	path, want := os.Getenv("ZTUNNEL_BENCH_CPUPROFILE"), os.Getenv("ZTUNNEL_BENCH_PROFILE")
	if want == "" {
		want = "throughput"
	}
	if path == "" || s.name != "ztunnel" || phase != want {
		return func() {}
	}
	secs := envInt("ZTUNNEL_BENCH_SECONDS", 3)
	var wg sync.WaitGroup
	for i, ns := range h.ztunnelNS {
		wg.Go(func() {
			prof, code, err := nodeGet(ns, "127.0.0.1:15000", fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs),
				time.Duration(secs+10)*time.Second)
			if err != nil || code != 200 {
				t.Errorf("profile of the ztunnel in %s: HTTP %d, %v", ns, code, err)
				return
			}
			if err := os.WriteFile(fmt.Sprintf("%s.%d", path, i+1), prof, 0o644); err != nil {
				t.Error(err)
			}
		})
	}
	return wg.Wait
}

// atFixedRate measures the proxies' CPU (per proxy: both ends, halved) and memory while
// they carry 1,000 64 B request/responses per second over 10 connections for 12 s; the
// memory is both proxies' processes together, at the end. 12 s, not 5: the phase comes
// straight after the connection storms, and a Go proxy's heap holds a storm's garbage
// until a collection, which a light load does not start; ztunnel's memtrim collects
// within two of its 2 s looks once traffic is light and the runtime returns the pages
// over a few seconds, so the figure is the steady state at this load, for every
// scenario alike.
func (h *harness) atFixedRate(t *testing.T, s scenario, m map[string]float64) {
	const secs = 12
	before := s.cpu()
	r, err := h.loadgenRun(s, "-mode", "rate", "-addr", s.echo, "-r", "1000", "-c", "10", "-d", strconv.Itoa(secs)+"s")
	if err != nil || r["failed"] > 0 {
		t.Errorf("%s: fixed rate: %v %v", s.name, err, r)
		return
	}
	m[rateCPU] = (s.cpu() - before) / secs / 2
	m[rateRSS] = s.rss() / 1e6
	if s.rssOf != nil {
		m[rateAnon], m[rateFile] = s.rssOf("RssAnon:")/1e6, s.rssOf("RssFile:")/1e6
	}
}

func medians(results map[string]map[string][]float64) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for s, byMetric := range results {
		out[s] = map[string]float64{}
		for k, vs := range byMetric {
			slices.Sort(vs)
			out[s][k] = vs[len(vs)/2]
		}
	}
	return out
}
