package platform

import (
	"encoding/json"
	"strings"
	"testing"
)

const (
	id1 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	id2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

func TestEnvironmentDetection(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		env   map[string]string
		want  Environment
	}{
		{"bare metal", map[string]string{"proc/self/cgroup": "0::/user.slice/user-1000.slice/session-2.scope\n"}, nil, BareMetal},
		{"nothing readable", nil, nil, BareMetal},
		{"kubernetes from env", nil, map[string]string{"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, Kubernetes},
		{"kubernetes from service account dir", map[string]string{"var/run/secrets/kubernetes.io/serviceaccount/": ""}, nil, Kubernetes},
		{"kubernetes beats docker", map[string]string{".dockerenv": "", "var/run/secrets/kubernetes.io/serviceaccount/token": "x"}, nil, Kubernetes},
		{"docker", map[string]string{".dockerenv": ""}, nil, Docker},
		{"container env (podman, nspawn)", nil, map[string]string{"container": "podman"}, Container},
		{"podman containerenv", map[string]string{"run/.containerenv": ""}, nil, Container},
		{"cgroup v1 docker path", map[string]string{"proc/self/cgroup": "4:memory:/docker/" + id1 + "\n"}, nil, Container},
		{"cgroup v2 systemd docker scope", map[string]string{"proc/self/cgroup": "0::/system.slice/docker-" + id1 + ".scope\n"}, nil, Container},
		{"cgroup kubepods", map[string]string{"proc/self/cgroup": "0::/kubepods.slice/kubepods-burstable.slice/x\n"}, nil, Container},
		{"mountinfo docker containers", map[string]string{
			"proc/self/cgroup":    "0::/\n",
			"proc/self/mountinfo": "600 590 8:1 /var/lib/docker/containers/" + id1 + "/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n",
		}, nil, Container},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := detector(t, tt.files, tt.env)
			if got := d.Environment(); got != tt.want {
				t.Fatalf("Environment() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestEnvironmentNamesAndPredicates(t *testing.T) {
	tests := []struct {
		e         Environment
		name      string
		container bool
		k8s       bool
	}{
		{BareMetal, "bare_metal", false, false},
		{Container, "container", true, false},
		{Docker, "docker", true, false},
		{Kubernetes, "kubernetes", true, true},
		{Environment(42), "unknown", false, false},
	}
	for _, tt := range tests {
		if tt.e.String() != tt.name || tt.e.IsContainer() != tt.container || tt.e.IsKubernetes() != tt.k8s {
			t.Errorf("%d: got %q container=%v k8s=%v", int(tt.e), tt.e.String(), tt.e.IsContainer(), tt.e.IsKubernetes())
		}
	}
	b, err := json.Marshal(map[string]Environment{"env": Kubernetes})
	if err != nil || string(b) != `{"env":"kubernetes"}` {
		t.Fatalf("json = %s, %v", b, err)
	}
}

func TestPodIdentity(t *testing.T) {
	k8sFiles := map[string]string{"var/run/secrets/kubernetes.io/serviceaccount/namespace": "orders-prod\n"}

	d := detector(t, k8sFiles, map[string]string{"HOSTNAME": "orders-7d9f-abcde", "NODE_NAME": "node-3"})
	if got := d.PodName(); got != "orders-7d9f-abcde" {
		t.Errorf("PodName from HOSTNAME on k8s = %q", got)
	}
	if got := d.Namespace(); got != "orders-prod" {
		t.Errorf("Namespace from file = %q", got)
	}

	d = detector(t, k8sFiles, map[string]string{"POD_NAME": "p1", "POD_NAMESPACE": "ns1", "HOSTNAME": "h"})
	if d.PodName() != "p1" || d.Namespace() != "ns1" {
		t.Errorf("downward API env must win: pod=%q ns=%q", d.PodName(), d.Namespace())
	}

	// Off Kubernetes the hostname is not a pod name.
	d = detector(t, map[string]string{".dockerenv": ""}, map[string]string{"HOSTNAME": "abc123"})
	if got := d.PodName(); got != "" {
		t.Errorf("PodName in docker = %q, want empty", got)
	}

	// A namespace file with junk is refused rather than passed on.
	d = detector(t, map[string]string{"var/run/secrets/kubernetes.io/serviceaccount/namespace": "bad name\x00\n"}, nil)
	if got := d.Namespace(); got != "" {
		t.Errorf("Namespace from junk file = %q, want empty", got)
	}
}

func TestContainerID(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"cgroup v1 docker", map[string]string{"proc/self/cgroup": "4:memory:/docker/" + id1 + "\n1:cpu:/docker/" + id1 + "\n"}, id1},
		{"kubernetes cri-containerd scope, last id wins", map[string]string{"proc/self/cgroup": "0::/kubepods.slice/kubepods-pod" + id2 + ".slice/cri-containerd-" + id1 + ".scope\n"}, id1},
		{"mountinfo with cgroup namespace", map[string]string{
			"proc/self/cgroup": "0::/\n",
			"proc/self/mountinfo": "500 400 0:50 / / rw - overlay overlay rw,upperdir=/var/lib/docker/overlay2/" + id2 + "/diff\n" +
				"600 590 8:1 /var/lib/docker/containers/" + id1 + "/hostname /etc/hostname rw - ext4 /dev/sda1 rw\n",
		}, id1},
		{"layer id is not a container id", map[string]string{
			"proc/self/cgroup":    "0::/\n",
			"proc/self/mountinfo": "500 400 0:50 / / rw - overlay overlay rw,upperdir=/var/lib/docker/overlay2/" + id2 + "/diff\n",
		}, ""},
		{"65 hex digits is no id", map[string]string{"proc/self/cgroup": "0::/docker/" + id1 + "a\n"}, ""},
		{"nothing", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := detector(t, tt.files, nil).ContainerID(); got != tt.want {
				t.Fatalf("ContainerID() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAppEnvAndProduction(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
		prod bool
	}{
		{nil, "development", false},
		{map[string]string{"ENV": "staging"}, "staging", false},
		{map[string]string{"ENV": "prod", "ENVIRONMENT": "Production"}, "production", true},
		{map[string]string{"APP_ENV": " PROD ", "ENVIRONMENT": "dev"}, "prod", true},
		{map[string]string{"APP_ENV": "   ", "ENV": "test"}, "test", false},
		{map[string]string{"APP_ENV": "production-eu"}, "production-eu", false},
	}
	for _, tt := range tests {
		d := Detector{Root: t.TempDir(), Getenv: envMap(tt.env)}
		if got := d.AppEnv(); got != tt.want {
			t.Errorf("AppEnv(%v) = %q, want %q", tt.env, got, tt.want)
		}
		if got := d.IsProduction(); got != tt.prod {
			t.Errorf("IsProduction(%v) = %v, want %v", tt.env, got, tt.prod)
		}
	}
	for env, want := range map[string]bool{"production": true, "PROD": true, " Prod\n": true, "": false, "products": false, "pre-prod": false} {
		if IsProduction(env) != want {
			t.Errorf("IsProduction(%q) != %v", env, want)
		}
	}
}

func TestDetectKubernetes(t *testing.T) {
	d := detector(t, map[string]string{
		"var/run/secrets/kubernetes.io/serviceaccount/namespace": "payments",
		"proc/self/cgroup":                 "0::/\n",
		"sys/fs/cgroup/cgroup.controllers": "cpu memory\n",
		"sys/fs/cgroup/memory.max":         "536870912\n",
		"sys/fs/cgroup/memory.high":        "max\n",
		"sys/fs/cgroup/cpu.max":            "250000 100000\n",
		"proc/self/mountinfo":              "600 590 8:1 /var/lib/kubelet/pods/x/etc-hosts /etc/hosts rw - ext4 /dev/sda1 rw\n",
	}, map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "HOSTNAME": "pay-0", "NODE_NAME": "n1", "APP_ENV": "prod"})
	info, err := d.Detect()
	if err != nil {
		t.Fatal(err)
	}
	want := Info{Environment: Kubernetes, PodName: "pay-0", Namespace: "payments", NodeName: "n1",
		CgroupVersion: 2, MemoryLimitBytes: 512 << 20, CPUQuota: 2.5, AppEnv: "prod"}
	if info != want {
		t.Fatalf("Detect() = %+v\nwant       %+v", info, want)
	}
}

func TestDetectReportsMalformedFiles(t *testing.T) {
	d := detector(t, map[string]string{
		"sys/fs/cgroup/cgroup.controllers": "",
		"sys/fs/cgroup/memory.max":         "lots\n",
		"sys/fs/cgroup/cpu.max":            "1 2 3\n",
	}, nil)
	info, err := d.Detect()
	if err == nil {
		t.Fatal("Detect() returned no error for malformed memory.max and cpu.max")
	}
	if !strings.Contains(err.Error(), "memory.max") || !strings.Contains(err.Error(), "cpu.max") {
		t.Fatalf("error must name both files: %v", err)
	}
	if info.MemoryLimitBytes != 0 || info.CPUQuota != 0 || info.CgroupVersion != 2 {
		t.Fatalf("malformed values must count as unlimited: %+v", info)
	}
}

// TestRealMachine is the smoke test: detection on the machine running the
// tests must not panic, and Current must be stable.
func TestRealMachine(t *testing.T) {
	d := Detector{}
	_, _ = d.Detect()
	_, _ = d.Memory()
	_, _ = d.CPUQuota()
	_ = d.Paths("")
	a, errA := Current()
	b, errB := Current()
	if a != b || (errA == nil) != (errB == nil) {
		t.Fatalf("Current() not stable: %+v vs %+v", a, b)
	}
}
