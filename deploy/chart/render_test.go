package chart_test

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"testing"

	"go.yaml.in/yaml/v3"
)

// podSpec is what the tests read of the DaemonSet's pod template.
type podSpec struct {
	Containers                    []container
	Volumes                       []volume
	TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
}

// container is what a test reads of the chart's ztunnel container.
type container struct {
	Image string
	Args  []string
	Env   []struct {
		Name      string
		Value     string
		ValueFrom struct {
			FieldRef struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
			ResourceFieldRef struct{ Resource string } `yaml:"resourceFieldRef"`
		} `yaml:"valueFrom"`
	}
	ReadinessProbe struct {
		HTTPGet struct {
			Port int
			Path string
		} `yaml:"httpGet"`
	} `yaml:"readinessProbe"`
	VolumeMounts    []mount         `yaml:"volumeMounts"`
	SecurityContext securityContext `yaml:"securityContext"`
}

type mount struct {
	Name      string
	MountPath string `yaml:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

type securityContext struct {
	RunAsUser              int  `yaml:"runAsUser"`
	RunAsGroup             int  `yaml:"runAsGroup"`
	ReadOnlyRootFilesystem bool `yaml:"readOnlyRootFilesystem"`
	Capabilities           struct {
		Add, Drop []string
	}
}

// volume is a pod volume, by the kinds the chart uses.
type volume struct {
	Name      string
	ConfigMap *struct {
		Name     string
		Optional bool
	} `yaml:"configMap"`
	HostPath  *struct{ Path string } `yaml:"hostPath"`
	EmptyDir  *struct{}              `yaml:"emptyDir"`
	Projected *struct {
		Sources []struct {
			ServiceAccountToken *struct{ Path, Audience string } `yaml:"serviceAccountToken"`
			ClusterTrustBundle  *struct{ Name, Path string }     `yaml:"clusterTrustBundle"`
		}
	}
}

// render runs deploy/chart/render.sh with extra helm arguments and returns the
// DaemonSet's pod template.
func render(t *testing.T, args ...string) podSpec {
	t.Helper()
	cmd := exec.Command("./deploy/chart/render.sh", args...)
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rendering the chart: %v\n%s", err, stderr.String())
	}
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var doc struct {
			Kind string
			Spec struct {
				Template struct{ Spec podSpec }
			}
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if doc.Kind == "DaemonSet" && len(doc.Spec.Template.Spec.Containers) == 1 {
			return doc.Spec.Template.Spec
		}
	}
	t.Fatal("no DaemonSet with one container in the rendered chart")
	return podSpec{}
}

// podFields are the pod's fieldRef values as the kubelet fills them in.
func podFields(pod, node, ip string) map[string]string {
	return map[string]string{"metadata.name": pod, "metadata.namespace": "istio-system",
		"spec.nodeName": node, "status.podIP": ip, "spec.serviceAccountName": "ztunnel"}
}

// kubeletEnv is the environment the kubelet gives the container: fieldRef and
// resourceFieldRef values filled in, CPU in whole CPUs (the chart's divisor 1, which
// the kubelet rounds up).
func kubeletEnv(c container, fields map[string]string, cpuLimit, cpuRequest string) []string {
	resources := map[string]string{"limits.cpu": cpuLimit, "requests.cpu": cpuRequest}
	var env []string
	for _, e := range c.Env {
		v := e.Value
		if p := e.ValueFrom.FieldRef.FieldPath; p != "" {
			v = fields[p]
		}
		if r := e.ValueFrom.ResourceFieldRef.Resource; r != "" {
			v = resources[r]
		}
		env = append(env, e.Name+"="+v)
	}
	return env
}
