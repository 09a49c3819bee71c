//go:build linux

package ztest

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Container is one container of a pod as a kubelet and runc start it, reduced to what
// a process can notice: the image's files as a read-only root, the volumes bind-mounted
// at their paths, the kubelet's /etc/hosts and /etc/resolv.conf, /proc, /sys and a few
// devices, the pod's network namespace, a group, a capability set, and only the env it
// is given. It is the chart test's stand-in for a container runtime where none runs.
type Container struct {
	Rootfs string   // the image's files, unpacked; mount points are created in it
	Args   []string // the entrypoint, then the container's args
	Env    []string
	Mounts []Mount
	Gid    int
	Caps   []string // capabilities kept, by name (NET_ADMIN); every other one is dropped
}

// capabilities are those a Container may keep, by the names Kubernetes gives them.
var capabilities = map[string]int{"NET_ADMIN": unix.CAP_NET_ADMIN, "NET_RAW": unix.CAP_NET_RAW, "SYS_ADMIN": unix.CAP_SYS_ADMIN}

// Mount is a volume (or a kubelet-managed file) at its path inside the container.
type Mount struct {
	Host, Path string
	ReadOnly   bool
}

// containerSpecEnv carries the Container to the init that sets it up.
const containerSpecEnv = "ZTEST_CONTAINER_INIT"

// ContainerInit is the container's init: a test binary that starts containers calls it
// first in TestMain. In a process started by StartContainer it sets the container up
// and execs its entrypoint (never returning); anywhere else it returns at once.
func ContainerInit() {
	spec := os.Getenv(containerSpecEnv)
	if spec == "" {
		return
	}
	var c Container
	err := json.Unmarshal([]byte(spec), &c)
	if err == nil {
		err = c.enter()
	}
	fmt.Fprintf(os.Stderr, "container init: %v\n", err)
	os.Exit(125) // runc's code for a container that could not start
}

// enter runs in the container's private mount namespace (unshare made it), in the pod's
// netns (ip netns exec), on one locked thread: capabilities are per thread, and the
// exec must come from the thread that dropped them.
func (c *Container) enter() error {
	runtime.LockOSThread()
	lastCap, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return err
	}
	if err := c.mountAll(); err != nil {
		return err
	}
	if err := unix.Chroot(c.Rootfs); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	if err := unix.Setgroups(nil); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := unix.Setgid(c.Gid); err != nil {
		return fmt.Errorf("setgid: %w", err)
	}
	last, _ := strconv.Atoi(strings.TrimSpace(string(lastCap)))
	if err := dropCaps(c.Caps, last); err != nil {
		return err
	}
	return unix.Exec(c.Args[0], c.Args, c.Env)
}

// mountAll makes the root a mount of its own (so it can be read-only under writable
// volumes), mounts the container's filesystems and volumes in order, then turns the
// root read-only, as readOnlyRootFilesystem does.
func (c *Container) mountAll() error {
	root := c.Rootfs
	if err := unix.Mount(root, root, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding the root: %w", err)
	}
	if err := mountAt(root, "/proc", func(dst string) error { return unix.Mount("proc", dst, "proc", 0, "") }, true); err != nil {
		return err
	}
	mounts := []Mount{{Host: "/sys", Path: "/sys", ReadOnly: true}}
	for _, dev := range []string{"null", "zero", "random", "urandom"} {
		mounts = append(mounts, Mount{Host: "/dev/" + dev, Path: "/dev/" + dev})
	}
	// Everything is mounted writable first, so that a volume nested in a read-only one
	// (the CRL inside root-cert.pem's directory) still gets its mount point.
	readOnly := []string{root}
	for _, m := range append(mounts, c.Mounts...) {
		st, err := os.Stat(m.Host)
		if err != nil {
			return err
		}
		bind := func(dst string) error {
			if err := unix.Mount(m.Host, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
				return fmt.Errorf("mounting %s at %s: %w", m.Host, m.Path, err)
			}
			if m.ReadOnly {
				readOnly = append(readOnly, dst)
			}
			return nil
		}
		if err := mountAt(root, m.Path, bind, st.IsDir()); err != nil {
			return err
		}
	}
	for _, dst := range readOnly {
		if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", dst, err)
		}
	}
	return nil
}

// mountAt creates the mount point (a directory, or an empty file) and mounts on it.
func mountAt(root, path string, mount func(dst string) error, dir bool) error {
	dst := filepath.Join(root, path)
	if dir {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return err
		}
		f.Close()
	}
	return mount(dst)
}

// dropCaps leaves the bounding set at keep and clears the inheritable and ambient
// sets: a root process then execs with exactly keep (capabilities(7), "execve of a
// root program").
func dropCaps(keep []string, last int) error {
	kept := map[int]bool{}
	for _, name := range keep {
		c, ok := capabilities[name]
		if !ok {
			return fmt.Errorf("capability %s: not one this init knows", name)
		}
		kept[c] = true
	}
	for c := 0; c <= last; c++ {
		if !kept[c] {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
				return fmt.Errorf("dropping capability %d: %w", c, err)
			}
		}
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return err
	}
	data[0].Inheritable, data[1].Inheritable = 0, 0
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("clearing inheritable capabilities: %w", err)
	}
	return unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
}

// Running is a started container: its process and its output.
type Running struct {
	Cmd  *exec.Cmd
	Log  string // stdout and stderr, in a file
	done chan struct{}
	err  error // set before done closes
}

// StartContainer runs c in the pod's network namespace, in a mount namespace of its
// own, from this test binary's ContainerInit. It is killed when the test ends, if it
// has not exited by then.
func (p *BedPod) StartContainer(t testing.TB, c Container) *Running {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", p.NS, "unshare", "--mount", "--propagation", "private", self)
	cmd.Env = []string{containerSpecEnv + "=" + string(spec), "PATH=" + os.Getenv("PATH")}
	return start(t, cmd)
}

// start runs cmd with its output in a file, killed when the test ends.
func start(t testing.TB, cmd *exec.Cmd) *Running {
	t.Helper()
	log, err := os.CreateTemp(t.TempDir(), "container-*.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &Running{Cmd: cmd, Log: log.Name(), done: make(chan struct{})}
	var wg sync.WaitGroup
	wg.Go(func() { r.err = cmd.Wait(); log.Close(); close(r.done) })
	t.Cleanup(func() {
		cmd.Process.Kill()
		wg.Wait()
	})
	return r
}

// Signal sends sig to the container's process.
func (r *Running) Signal(sig syscall.Signal) error { return r.Cmd.Process.Signal(sig) }

// Done is closed when the process has exited.
func (r *Running) Done() <-chan struct{} { return r.done }

// Wait waits at most d for the process to exit and reports whether it did, and how.
func (r *Running) Wait(d time.Duration) (exited bool, err error) {
	select {
	case <-r.done:
		return true, r.err
	case <-time.After(d):
		return false, nil
	}
}

// Output is what the container printed so far.
func (r *Running) Output() string {
	b, _ := os.ReadFile(r.Log)
	return string(b)
}
