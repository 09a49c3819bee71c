//go:build linux

package inpod_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
	"istio.io/istio/pkg/zdsapi"

	"github.com/ztunnel-go/ztunnel/internal/identity"
	"github.com/ztunnel-go/ztunnel/internal/inpod"
	"github.com/ztunnel-go/ztunnel/internal/logging"
	"github.com/ztunnel-go/ztunnel/internal/metrics"
	"github.com/ztunnel-go/ztunnel/internal/netns"
	"github.com/ztunnel-go/ztunnel/internal/readiness"
	"github.com/ztunnel-go/ztunnel/internal/ztest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// starter records pod starts and stops; fail makes the next starts of a pod fail.
type starter struct {
	mu      sync.Mutex
	running map[string]bool
	fail    map[string]error
	starts  map[string]int
	stuck   map[string]chan struct{} // a pod whose end waits for the channel's close
	reg     *prometheus.Registry     // the client's workload_manager_* metrics
}

// metric reads one unlabelled gauge or counter from the client's registry.
func (s *starter) metric(t *testing.T, name string) float64 {
	t.Helper()
	families, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			m := f.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

type run struct {
	s   *starter
	uid string
}

func (r run) Stop() { r.s.mu.Lock(); delete(r.s.running, r.uid); r.s.mu.Unlock() }

// Done is closed once the pod has ended: at once, unless the test holds it (stuck).
func (r run) Done() <-chan struct{} {
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if c := r.s.stuck[r.uid]; c != nil {
		return c
	}
	return ended
}

var ended = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (s *starter) start(p identity.Workload, _ *netns.NS) (inpod.Running, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starts[p.UID]++
	if err := s.fail[p.UID]; err != nil {
		return nil, err
	}
	s.running[p.UID] = true
	return run{s, p.UID}, nil
}

func (s *starter) is(uid string) bool { s.mu.Lock(); defer s.mu.Unlock(); return s.running[uid] }
func (s *starter) setFail(uid string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.fail, uid)
	} else {
		s.fail[uid] = err
	}
}

func newStarter() *starter {
	return &starter{running: map[string]bool{}, fail: map[string]error{}, starts: map[string]int{},
		stuck: map[string]chan struct{}{}, reg: prometheus.NewRegistry()}
}

const selfNS = "/proc/self/ns/net" // a real network namespace anyone may open

func setup(t *testing.T) (*ztest.FakeCNI, *starter, *readiness.Tracker) {
	t.Helper()
	cni := ztest.NewFakeCNI(t, filepath.Join(t.TempDir(), "zds.sock"))
	s := newStarter()
	tr := readiness.New()
	c := inpod.New(cni.Path, s.start, nil, tr.Register("workload proxy manager"), nil)
	c.Metrics = metrics.NewWorkloadManager(s.reg)
	c.Retry = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return cni, s, tr
}

func TestSnapshotThenAddsAndDeletes(t *testing.T) {
	ztest.NoLeaks(t)
	cni := ztest.NewFakeCNI(t, filepath.Join(t.TempDir(), "zds.sock"))
	cni.AddPod("uid-a", "ns", "a", "sa", selfNS) // known before ztunnel connects: replayed
	s := newStarter()
	tr := readiness.New()
	c := inpod.New(cni.Path, s.start, nil, tr.Register("workload proxy manager"), nil)
	c.Metrics = metrics.NewWorkloadManager(s.reg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	ztest.Eventually(t, "the replay and readiness", func() bool { return s.is("uid-a") && len(tr.Pending()) == 0 })
	if ack, err := cni.AddPod("uid-b", "ns", "b", "sa", selfNS); ack != "" || err != nil || !s.is("uid-b") {
		t.Errorf("add: %q %v", ack, err)
	}
	if ack, err := cni.DelPod("uid-a"); ack != "" || err != nil || s.is("uid-a") {
		t.Errorf("del: %q %v, running %v", ack, err, s.is("uid-a"))
	}
	cancel()
	wg.Wait()
	if s.is("uid-b") {
		t.Error("pods still running after shutdown")
	}
}

func TestBadInputIsRefusedWithoutHarm(t *testing.T) {
	ztest.NoLeaks(t)
	cni, s, _ := setup(t)
	ztest.Eventually(t, "connected", cni.Connected)
	cni.AddPod("uid-ok", "ns", "ok", "sa", selfNS)
	add, _ := proto.Marshal(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Add{Add: &zdsapi.AddWorkload{Uid: "uid-x"}}})
	keep, _ := proto.Marshal(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Keep{Keep: &zdsapi.KeepWorkload{Uid: "uid-ok"}}})
	notNS, _ := os.Open(os.Args[0]) // a file, but not a namespace
	defer notNS.Close()
	nsFile, _ := os.Open(selfNS)
	defer nsFile.Close()
	tests := []struct {
		name  string
		msg   []byte
		files []*os.File
		want  string
	}{
		{"undecodable message", []byte{0xff, 0xff, 0xff}, nil, "undecodable message"},
		{"Add without its fd", add, nil, "an Add needs exactly one"},
		{"Add with two fds", add, []*os.File{nsFile, nsFile}, "an Add needs exactly one"},
		{"Del with an fd", mustDel(t), []*os.File{nsFile}, "an Add needs exactly one and nothing else any"},
		{"fd that is not a network namespace", add, []*os.File{notNS}, "not a network namespace"},
		{"Keep after the snapshot", keep, nil, "Keep after the snapshot"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ack string
			var err error
			ztest.Eventually(t, "an answer (ztunnel reconnects after a protocol error)", func() bool {
				ack, err = cni.SendRaw(tt.msg, tt.files...)
				return err == nil
			})
			if !strings.Contains(ack, tt.want) {
				t.Errorf("answer %q, %v; want a NACK containing %q", ack, err, tt.want)
			}
			if !s.is("uid-ok") {
				t.Error("a pod already served was affected")
			}
		})
	}
}

func mustDel(t *testing.T) []byte {
	b, err := proto.Marshal(&zdsapi.WorkloadRequest{Payload: &zdsapi.WorkloadRequest_Del{Del: &zdsapi.DelWorkload{Uid: "uid-none"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFailedStartStaysPendingAndIsRetried(t *testing.T) {
	ztest.NoLeaks(t)
	cni, s, tr := setup(t)
	ztest.Eventually(t, "ready", func() bool { return len(tr.Pending()) == 0 })
	s.setFail("uid-p", errors.New("address already in use"))
	ack, _ := cni.AddPod("uid-p", "ns", "p", "sa", selfNS)
	if !strings.Contains(ack, "address already in use") {
		t.Errorf("answer %q, want a NACK with the reason", ack)
	}
	if p, a := s.metric(t, "workload_manager_pending_proxy_count"), s.metric(t, "workload_manager_active_proxy_count"); p != 1 || a != 0 {
		t.Errorf("while failing: pending %v active %v, want 1 and 0", p, a)
	}
	s.setFail("uid-p", nil)
	ztest.Eventually(t, "the retry to start the pod", func() bool {
		return s.is("uid-p") && s.metric(t, "workload_manager_active_proxy_count") == 1
	})
	if p, n := s.metric(t, "workload_manager_pending_proxy_count"), s.metric(t, "workload_manager_proxies_started_total"); p != 0 || n != 1 {
		t.Errorf("after the retry: pending %v started %v, want 0 and 1", p, n)
	}
	cni.DelPod("uid-p")
	if n, a := s.metric(t, "workload_manager_proxies_stopped_total"), s.metric(t, "workload_manager_active_proxy_count"); n != 1 || a != 0 {
		t.Errorf("after the delete: stopped %v active %v, want 1 and 0", n, a)
	}
}

func TestReplayDrainsPodsNotNamed(t *testing.T) {
	ztest.NoLeaks(t)
	cni, s, _ := setup(t)
	ztest.Eventually(t, "connected", cni.Connected)
	cni.AddPod("uid-gone", "ns", "gone", "sa", selfNS)
	cni.AddPod("uid-stays", "ns", "stays", "sa", selfNS)
	// istio-cni restarts and no longer knows uid-gone: it is dropped from the fake, then
	// the connection is cut so that ztunnel reconnects and gets the new snapshot.
	cni.DelPod("uid-gone")
	cni.AddPod("uid-gone", "ns", "gone", "sa", selfNS)
	cni.Forget("uid-gone")
	cni.Reconnect()
	ztest.Eventually(t, "the reconcile", func() bool { return !s.is("uid-gone") && s.is("uid-stays") })
}

func TestSameUIDNewNamespaceReplaces(t *testing.T) {
	ztest.NoLeaks(t)
	cni, s, _ := setup(t)
	ztest.Eventually(t, "connected", cni.Connected)
	cni.AddPod("uid-a", "ns", "a", "sa", selfNS)
	cni.AddPod("uid-a", "ns", "a", "sa", selfNS) // same namespace: kept as is
	if s.starts["uid-a"] != 1 || !s.is("uid-a") {
		t.Errorf("%d starts for a replayed pod, want 1", s.starts["uid-a"])
	}
}

// A pod slow to end (a connection stuck in a syscall, say) holds up no other pod: its
// Del is answered at once, the next pods' Add and Del are served meanwhile, and only
// shutdown waits for it. (Rust's statemanager drains deleted pods in tasks of their own
// too, joined at shutdown: DrainingTasks.)
func TestSlowPodEndHoldsUpNoOther(t *testing.T) {
	ztest.NoLeaks(t)
	cni := ztest.NewFakeCNI(t, filepath.Join(t.TempDir(), "zds.sock"))
	s := newStarter()
	stuck := make(chan struct{})
	s.stuck["uid-slow"] = stuck
	c := inpod.New(cni.Path, s.start, nil, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); c.Run(ctx) }()
	var once sync.Once
	release := func() { once.Do(func() { close(stuck) }) }
	defer func() { release(); cancel(); <-ran }()
	ztest.Eventually(t, "connected", cni.Connected)
	steps := []struct {
		name string
		do   func() (string, error)
		want bool // uid's proxies run afterwards
		uid  string
	}{
		{"add the slow pod", func() (string, error) { return cni.AddPod("uid-slow", "ns", "slow", "sa", selfNS) }, true, "uid-slow"},
		{"delete it: answered while it has not ended", func() (string, error) { return cni.DelPod("uid-slow") }, false, "uid-slow"},
		{"add another pod meanwhile", func() (string, error) { return cni.AddPod("uid-b", "ns", "b", "sa", selfNS) }, true, "uid-b"},
		{"delete that one too", func() (string, error) { return cni.DelPod("uid-b") }, false, "uid-b"},
		{"and add a third, running at shutdown", func() (string, error) { return cni.AddPod("uid-c", "ns", "c", "sa", selfNS) }, true, "uid-c"},
	}
	for _, st := range steps {
		if ack, err := st.do(); ack != "" || err != nil || s.is(st.uid) != st.want {
			t.Fatalf("%s: answer %q, %v; running %v, want %v", st.name, ack, err, s.is(st.uid), st.want)
		}
	}
	cancel()
	ztest.Eventually(t, "shutdown stops uid-c", func() bool { return !s.is("uid-c") })
	select {
	case <-ran:
		t.Fatal("Run returned before the slow pod ended")
	default:
	}
	release()
	<-ran
}

// While istio-cni's socket is missing, ztunnel retries after 10 ms, doubling to at most
// 15 s, on a synctest bubble's fake clock: a minute brings exactly the retries that
// schedule allows. (Rust's WorkloadProxyNetworkHandler::connect has the same cap but
// doubles before its first sleep, 20 ms: a difference of 10 ms, once, left as it is.)
func TestReconnectBackoff(t *testing.T) {
	ztest.NoLeaks(t)
	synctest.Test(t, func(t *testing.T) {
		logs := &ztest.LogBuffer{}
		log, _, _ := logging.New(logs, "plain", "info")
		c := inpod.New(filepath.Join(t.TempDir(), "missing.sock"), newStarter().start, log, nil, nil)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { c.Run(ctx) })
		time.Sleep(time.Minute)
		synctest.Wait()
		cancel()
		wg.Wait()
		var got []string
		for _, line := range strings.Split(logs.String(), "\n") {
			if _, after, ok := strings.Cut(line, "retry_in="); ok {
				got = append(got, strings.Fields(after)[0])
			}
		}
		// 10 ms … 10.24 s sum to 20.47 s; then 15 s each: 35.47, 50.47, and the retry due
		// at 65.47 s is past the minute.
		want := []string{"10ms", "20ms", "40ms", "80ms", "160ms", "320ms", "640ms", "1.28s", "2.56s", "5.12s", "10.24s", "15s", "15s", "15s"}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("retries in the first minute:\n %v\nwant\n %v", got, want)
		}
	})
}
