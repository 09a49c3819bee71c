//go:build linux

package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

const clockTicks = 100 // USER_HZ on Linux

// procCPU reads the CPU seconds the given processes have used.
func procCPU(pids ...int) func() float64 {
	return func() float64 {
		total := 0.0
		for _, pid := range pids {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if err != nil {
				continue
			}
			// Fields after the command name, which may hold spaces: state is field 3.
			f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
			u, _ := strconv.ParseFloat(f[11], 64) // utime, field 14
			s, _ := strconv.ParseFloat(f[12], 64) // stime, field 15
			total += (u + s) / clockTicks
		}
		return total
	}
}

// procRSS reads the resident memory of the given processes, in bytes.
func procRSS(pids ...int) func() float64 {
	of := procStatus(pids...)
	return func() float64 { return of("VmRSS:") }
}

// procStatus sums one memory field of /proc/PID/status ("VmRSS:", "RssAnon:",
// "RssFile:") over the processes, in bytes.
func procStatus(pids ...int) func(field string) float64 {
	return func(field string) float64 {
		total := 0.0
		for _, pid := range pids {
			total += statusField(fmt.Sprintf("/proc/%d/status", pid), field)
		}
		return total
	}
}

func statusField(path, field string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb * 1024
		}
	}
	return 0
}

// inNS runs a command inside a network namespace and returns its stdout.
func inNS(ns string, timeout time.Duration, prog string, args ...string) ([]byte, error) {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, prog}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	timer := time.AfterFunc(timeout, func() { cmd.Process.Kill() })
	defer timer.Stop()
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %v: %w: %s", prog, args, err, stderr.String())
	}
	return out, nil
}

// iperf runs iperf3 from the scenario's client and returns Gbit/s and the bytes moved.
func iperf(s scenario, secs int, extra ...string) (gbps, bytes float64, err error) {
	host, port, _ := strings.Cut(s.iperf, ":")
	args := append([]string{"-c", host, "-p", port, "-t", strconv.Itoa(secs), "-J"}, extra...)
	out, err := inNS(s.clientNS, time.Duration(secs+20)*time.Second, "iperf3", args...)
	if err != nil {
		return 0, 0, err
	}
	var r struct {
		End struct {
			SumReceived struct {
				Bytes         float64 `json:"bytes"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	if err := json.Unmarshal(out, &r); err != nil || r.Error != "" {
		return 0, 0, fmt.Errorf("iperf3: %v %s", err, r.Error)
	}
	return r.End.SumReceived.BitsPerSecond / 1e9, r.End.SumReceived.Bytes, nil
}

// loadgen runs the load generator from the scenario's client and decodes its answer.
func (h *harness) loadgenRun(s scenario, args ...string) (map[string]float64, error) {
	out, err := inNS(s.clientNS, time.Minute, h.loadgen, args...)
	if err != nil {
		return nil, err
	}
	r := map[string]float64{}
	return r, json.Unmarshal(out, &r)
}

// idleRSS opens n idle tunnelled connections and returns the proxies' extra memory per
// connection per end (both ends are proxies in every scenario but direct).
func (h *harness) idleRSS(t *testing.T, s scenario, n int) float64 {
	if s.rss == nil {
		return 0
	}
	before := s.rss()
	cmd := exec.Command("ip", "netns", "exec", s.clientNS, h.loadgen, "-mode", "idle", "-addr", s.echo, "-c", strconv.Itoa(n), "-size", "1")
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Errorf("%s: idle connections failed: %q %v", s.name, line, err)
		return 0
	}
	time.Sleep(200 * time.Millisecond)
	return (s.rss() - before) / float64(n) / 2
}
