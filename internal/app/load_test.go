//go:build linux

package app_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

// LD-1: 10,000 concurrent tunnels, client pod on node 1 → ztunnel → HBONE → ztunnel →
// echo pod on node 2, each carrying its own 1 KiB both ways twice while all are open.
// One process may hold 20,000 descriptors here, and each ztunnel needs one per tunnel,
// so node 2's ztunnel runs as its own process (the real binary, in node 2's netns) and
// the client and echo apps are bench/loadgen processes in their pods; node 1's ztunnel
// runs in this process, where its goroutines and memory are measured. The HBONE
// connections are about ⌈10,000 / 100 streams⌉, and once the client closes, node 1's
// goroutines go back to where they were.
func TestTenThousandTunnels(t *testing.T) {
	const n = 10000
	ztest.NoLeaks(t)
	c := newClusterBed(t)
	c.start(t, 1, "POOL_UNUSED_RELEASE_TIMEOUT=2s") // so the idle HBONE connections go within the test
	tools := t.TempDir()
	c.startProcess(t, 2, buildTool(t, tools, "./cmd/ztunnel"))
	loadgen := buildTool(t, tools, "./bench/loadgen")
	sleep, echo := c.pods["sleep"], c.pods["echo-b"]
	startIn(t, echo, "ready", loadgen, "-mode", "echo", "-listen", ":9090")
	ztest.Eventually(t, "node 2's ztunnel carries traffic", func() bool {
		_, _, err := ask(t, sleep, "10.70.2.10:8080")
		return err == nil
	})
	baseG, baseMem := runtime.NumGoroutine(), inUse()

	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node 1's ztunnel log, its warnings and errors:\n%s", problems(c.nodes[1].logs.String()))
		}
	})
	client, control := startIn(t, sleep, "ready", loadgen, "-mode", "idle", "-addr", "10.70.2.10:9090",
		"-c", fmt.Sprint(n), "-size", "1024")
	perConnG := float64(runtime.NumGoroutine()-baseG) / n
	perConnMem := float64(inUse()-baseMem) / n
	hbone := established(t, echo, 15008)
	t.Logf("%d tunnels: %d HBONE connections; node 1's ztunnel: %.2f goroutines and %.1f KiB per tunnel",
		n, hbone, perConnG, perConnMem/1024)
	if want := (n + 99) / 100; hbone < want || hbone > want+want/5 {
		t.Errorf("%d HBONE connections for %d tunnels of one key, want about %d", hbone, n, want)
	}
	if perConnG > 3 { // catalogue LD-1's budget per proxied connection
		t.Errorf("%.2f goroutines per tunnel, budget 3", perConnG)
	}
	if perConnMem > 64<<10 {
		t.Errorf("%.1f KiB per tunnel, budget 64", perConnMem/1024)
	}
	control("again") // every tunnel echoes its bytes once more, all still open
	control("")      // the client closes them all and exits
	if err := client.Wait(); err != nil {
		t.Fatalf("client: %v", err)
	}
	// The pool keeps the idle HBONE connections (a read loop each) until they have been
	// unused for POOL_UNUSED_RELEASE_TIMEOUT, then everything is back to the baseline.
	for deadline := time.Now().Add(30 * time.Second); runtime.NumGoroutine() > baseG+10; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("node 1 still has %d goroutines 30 s after the client closed, %d before", runtime.NumGoroutine(), baseG)
		}
	}
	// The goroutines are back once most connections are gone, but connections go idle
	// as their last tunnel ends, spread over a few of the pool's sweeps: the last may
	// still be within POOL_UNUSED_RELEASE_TIMEOUT. A stream left open in one would keep
	// it forever.
	ztest.Eventually(t, "at most one HBONE connection left after the pool's idle timeout", func() bool {
		return established(t, echo, 15008) <= 1
	})
}

// buildTool builds a command of this module into dir.
func buildTool(t *testing.T, dir, pkg string) string {
	t.Helper()
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = filepath.Join("..", "..")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", pkg, err, b)
	}
	return out
}

// startProcess runs node i's ztunnel as the real binary inside the node's netns, with
// the CA served there too; it gets SIGTERM when the test ends.
func (c *cluster) startProcess(t *testing.T, i int, bin string) {
	t.Helper()
	env := c.env(i, c.ca.ListenIn(t, c.nodeNS[i]))
	log, err := os.Create(filepath.Join(t.TempDir(), fmt.Sprintf("ztunnel-%d.log", i)))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", filepath.Base(c.nodeNS[i]), bin)
	cmd.Env, cmd.Stdout, cmd.Stderr = append(env, "PATH="+os.Getenv("PATH")), log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		log.Close()
		if t.Failed() {
			b, _ := os.ReadFile(log.Name())
			t.Logf("node %d's ztunnel log, its warnings and errors:\n%s", i, problems(string(b)))
		}
	})
}

// problems keeps a log's WARN and ERROR lines, the first 20.
func problems(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if (strings.Contains(l, " WARN ") || strings.Contains(l, " ERROR ")) && len(out) < 20 {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// startIn runs a command inside the pod's netns and waits (2 minutes at most) for the
// line ready on its output. control writes one line to its stdin; "" closes stdin.
func startIn(t *testing.T, p *ztest.BedPod, ready string, argv ...string) (*exec.Cmd, func(string)) {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", p.NS}, argv...)...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	wait := func() {
		t.Helper()
		timer := time.NewTimer(2 * time.Minute)
		defer timer.Stop()
		select {
		case line, ok := <-lines:
			if !ok || line != ready {
				cmd.Process.Kill()
				err := cmd.Wait() // and stderr is complete
				t.Fatalf("%s: %q instead of %q (%v); stderr: %s", argv[0], line, ready, err, stderr.String())
			}
		case <-timer.C:
			cmd.Process.Kill()
			t.Fatalf("%s: not %s after 2 minutes; stderr: %s", argv[0], ready, stderr.String())
		}
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
		for range lines {
		}
	})
	wait()
	return cmd, func(line string) {
		t.Helper()
		if line == "" {
			stdin.Close()
			return
		}
		io.WriteString(stdin, line+"\n")
		wait()
	}
}

// roundTrip sends 1 KiB that names the tunnel and the round, and expects it echoed.
func roundTrip(w io.Writer, r io.Reader, i, round int) error {
	msg := bytes.Repeat([]byte(fmt.Sprintf("%06d/%d|", i, round)), 1024/9+1)[:1024]
	if _, err := w.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo carried other bytes: %.20q", got)
	}
	return nil
}

func closeAll(conns []net.Conn) {
	for _, c := range conns {
		c.Close()
	}
}

// inUse is the Go heap and stacks in use, after a collection.
func inUse() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse + m.StackInuse)
}

// established counts TCP connections established to port inside the pod's netns.
func established(t *testing.T, p *ztest.BedPod, port int) int {
	var count int
	err := p.Do(func() error {
		for _, table := range []string{"/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6"} {
			data, err := os.ReadFile(table)
			if err != nil {
				return err
			}
			for _, line := range strings.Split(string(data), "\n") {
				f := strings.Fields(line)
				if len(f) > 3 && strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) && f[3] == "01" {
					count++
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return count
}

// LD-2: connection churn. 6,000 connections, 16 at a time: each reads the app's line,
// sends 1 KiB and reads it back, then closes with a FIN, or with a RST; every fifth
// client aborts (RST) before anything was carried. Every well-formed one succeeds, and
// afterwards goroutines, heap and descriptors are back to where they were.
func TestConnectionChurn(t *testing.T) {
	const n, workers = 6000, 16
	ztest.NoLeaks(t)
	c := newCluster(t)
	sleep := c.pods["sleep"]
	ask(t, sleep, "10.70.2.10:8080") // warm: certificates and the pooled HBONE connection
	baseG, baseMem := runtime.NumGoroutine(), inUse()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []string
	for w := range workers {
		wg.Go(func() {
			// Each worker's thread enters the pod's netns: its sockets are the pod's.
			err := sleep.Do(func() error {
				for i := w; i < n; i += workers {
					if err := churnOne(i); err != nil {
						mu.Lock()
						errs = append(errs, fmt.Sprintf("connection %d: %v", i, err))
						mu.Unlock()
					}
				}
				return nil
			})
			if err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d of %d failed, first: %s", len(errs), n, strings.Join(errs[:min(5, len(errs))], "; "))
	}
	ztest.Eventually(t, "goroutines back to the baseline after the churn", func() bool {
		return runtime.NumGoroutine() <= baseG+10
	})
	if grown := inUse() - baseMem; grown > 16<<20 {
		t.Errorf("heap and stacks grew by %d KiB over %d connections", grown>>10, n)
	}
}

// churnOne runs one connection of the churn, from a thread in the client pod's netns.
func churnOne(i int) error {
	c, err := net.DialTimeout("tcp", "10.70.2.10:8080", 10*time.Second)
	if err != nil {
		return err
	}
	tc := c.(*net.TCPConn)
	tc.SetDeadline(time.Now().Add(30 * time.Second))
	if i%5 == 4 { // abort before the tunnel carried anything
		tc.SetLinger(0)
		return tc.Close()
	}
	defer tc.Close()
	r := bufio.NewReader(tc)
	if _, err := r.ReadString('\n'); err != nil {
		return fmt.Errorf("whoami line: %w", err)
	}
	if err := roundTrip(tc, r, i, 0); err != nil {
		return err
	}
	if i%3 == 0 {
		tc.SetLinger(0)
	}
	return nil
}
