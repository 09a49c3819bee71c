//go:build linux

package ztest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// Podman runs containers with the podman of this machine the way this machine allows:
// the runc runtime, cgroupfs, and no default ulimits (crun fails here on cgroups and on
// RLIMIT_NOFILE). Its containers.conf is the test's own.
type Podman struct {
	conf string
}

// NewPodman checks that podman and runc are installed (.ci/run installs them).
func NewPodman(t testing.TB) *Podman {
	t.Helper()
	for _, tool := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: install podman and runc (.ci/run does)", tool)
		}
	}
	conf := filepath.Join(t.TempDir(), "containers.conf")
	if err := os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return &Podman{conf: conf}
}

func (p *Podman) command(args ...string) *exec.Cmd {
	cmd := exec.Command("podman", append([]string{"--runtime", "runc", "--cgroup-manager", "cgroupfs"}, args...)...)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+p.conf)
	return cmd
}

// Load loads an image tarball and returns the name it was loaded as.
func (p *Podman) Load(t testing.TB, tarball string) string {
	t.Helper()
	out, err := p.command("load", "-q", "-i", tarball).CombinedOutput()
	if err != nil {
		t.Fatalf("podman load: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if name, ok := strings.CutPrefix(line, "Loaded image: "); ok {
			return strings.TrimSpace(name)
		}
	}
	t.Fatalf("podman load named no image:\n%s", out)
	return ""
}

var podmanSeq atomic.Int64

// Start runs image as c describes, in the pod's network namespace: read-only root, the
// mounts, the env, the group and capabilities; c.Rootfs is not used (the image is).
// SIGTERM to the returned process reaches the container (podman's signal proxy); the
// container is removed when the test ends.
func (p *Podman) Start(t testing.TB, pod *BedPod, image string, c Container) *Running {
	t.Helper()
	name := fmt.Sprintf("ztest-%d-%d", os.Getpid(), podmanSeq.Add(1))
	args := []string{"run", "--rm", "--name", name, "--read-only", "--read-only-tmpfs=false",
		"--network", "ns:" + pod.Path, "--user", fmt.Sprintf("0:%d", c.Gid), "--cap-drop", "ALL"}
	for _, cp := range c.Caps {
		args = append(args, "--cap-add", cp)
	}
	for _, m := range c.Mounts {
		v := m.Host + ":" + m.Path
		if m.ReadOnly {
			v += ":ro"
		}
		args = append(args, "--volume", v)
	}
	for _, e := range c.Env {
		args = append(args, "--env", e)
	}
	args = append(append(args, "--entrypoint", c.Args[0], image), c.Args[1:]...)
	t.Cleanup(func() { p.command("rm", "--force", "--time", "0", name).Run() })
	return start(t, p.command(args...))
}
