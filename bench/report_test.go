//go:build linux

package bench

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// report renders the medians, the ratios against the baselines and the goals.
func report(names []string, med map[string]map[string]float64, rounds, secs int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Benchmarks\n\nLatest run of `sudo bench/run`: %s, %d rounds interleaved, iperf3 %d s per run, medians.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), rounds, secs)
	fmt.Fprintf(&b, "Machine: %s, %d CPUs, kernel %s, %s.\n\n", cpuModel(), runtime.NumCPU(), kernel(), runtime.Version())
	b.WriteString("| metric | " + strings.Join(names, " | ") + " | ztunnel / mtls-pipe | ztunnel / stunnel |\n")
	b.WriteString("|---" + strings.Repeat("|---:", len(names)+2) + "|\n")
	zt, pipe, st := med["ztunnel"], med["mtls-pipe"], med["stunnel"]
	for _, k := range metricOrder {
		b.WriteString("| " + k)
		for _, n := range names {
			b.WriteString(" | " + cell(med[n], k))
		}
		b.WriteString(" | " + ratio(zt, pipe, k) + " | " + ratio(zt, st, k) + " |\n")
	}
	b.WriteString("\nThe direct column has no proxy; memory and CPU columns are the proxies' own.\n\n## Goals\n\n")
	b.WriteString("| goal | measured | holds |\n|---|---:|---|\n")
	for _, g := range goals(med) {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", g.what, g.measured, g.holds)
	}
	return b.String()
}

type goal struct{ what, measured, holds string }

func goals(med map[string]map[string]float64) []goal {
	zt, pipe, st, direct := med["ztunnel"], med["mtls-pipe"], med["stunnel"], med["direct"]
	var out []goal
	check := func(what string, v float64, ok bool, unit string) {
		if math.IsNaN(v) || math.IsInf(v, 0) || v == 0 {
			out = append(out, goal{what, "no measurement", "—"})
			return
		}
		out = append(out, goal{what, fmt.Sprintf("%.2f%s", v, unit), yes(ok)})
	}
	atLeast := func(what string, v, want float64, unit string) { check(what, v, v >= want, unit) }
	atMost := func(what string, v, want float64, unit string) { check(what, v, v <= want, unit) }
	atLeast("throughput client→server, 1 stream ≥ 1.05× mtls-pipe", zt[upGbps]/pipe[upGbps], 1.05, "×")
	atLeast("throughput server→client, 1 stream ≥ 1.05× mtls-pipe", zt[downGbps]/pipe[downGbps], 1.05, "×")
	if st != nil {
		atLeast("throughput client→server, 1 stream ≥ 1.2× stunnel", zt[upGbps]/st[upGbps], 1.2, "×")
		atLeast("throughput server→client, 1 stream ≥ 1.2× stunnel", zt[downGbps]/st[downGbps], 1.2, "×")
	}
	atLeast("throughput, 8 streams ≥ 1.0× mtls-pipe", zt[p8Gbps]/pipe[p8Gbps], 1.0, "×")
	atMost("CPU per GiB ≤ 1.0× mtls-pipe", zt[cpuGiB]/pipe[cpuGiB], 1.0, "×")
	ztAdded, pipeAdded := zt[p50]-direct[p50], pipe[p50]-direct[p50]
	atMost("p50 added latency ≤ 1.2× mtls-pipe's", ztAdded/pipeAdded, 1.2, "×")
	atMost("p99 added ≤ 2× p50 added", (zt[p99]-direct[p99])/ztAdded, 2, "×")
	atLeast("new connections/s at c=8 ≥ 3× mtls-pipe", zt[cps8]/pipe[cps8], 3, "×")
	atMost("at 1,000 requests/s ≤ 1.0× mtls-pipe's vCPU", zt[rateCPU]/pipe[rateCPU], 1.0, "×")
	atMost("at 1,000 requests/s ≤ 0.05 vCPU per ztunnel", zt[rateCPU], 0.05, " vCPU")
	atMost("at 1,000 requests/s ≤ 20 MB RSS per ztunnel", zt[rateRSS]/2, 20, " MB")
	atMost("≤ 24 KiB per end per idle connection", zt[idleKiB], 24, " KiB")
	return out
}

func yes(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func cell(m map[string]float64, k string) string {
	v, ok := m[k]
	if !ok {
		return "—"
	}
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

func ratio(a, b map[string]float64, k string) string {
	x, okA := a[k]
	y, okB := b[k]
	if !okA || !okB || y == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", x/y)
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func kernel() string {
	out, _ := exec.Command("uname", "-r").Output()
	return strings.TrimSpace(string(out))
}
