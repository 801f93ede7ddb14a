package platform

import (
	"strings"
)

// Environment is where the process runs.
type Environment int

// The environments, from the least to the most specific.
const (
	// BareMetal is a host or VM with no container runtime around the
	// process.
	BareMetal Environment = iota
	// Container is a container of a runtime other than Docker (podman,
	// containerd, LXC, systemd-nspawn).
	Container
	// Docker is a Docker container (/.dockerenv exists).
	Docker
	// Kubernetes is a pod (KUBERNETES_SERVICE_HOST is set or the
	// service-account directory is mounted).
	Kubernetes
)

// String returns "bare_metal", "container", "docker" or "kubernetes".
func (e Environment) String() string {
	switch e {
	case BareMetal:
		return "bare_metal"
	case Container:
		return "container"
	case Docker:
		return "docker"
	case Kubernetes:
		return "kubernetes"
	}
	return "unknown"
}

// MarshalText writes the String form, so JSON and logs show the name.
func (e Environment) MarshalText() ([]byte, error) { return []byte(e.String()), nil }

// IsContainer reports whether the process runs in any container,
// Kubernetes included.
func (e Environment) IsContainer() bool {
	return e == Container || e == Docker || e == Kubernetes
}

// IsKubernetes reports whether the process runs in a Kubernetes pod.
func (e Environment) IsKubernetes() bool { return e == Kubernetes }

// cgroupHints are path fragments of /proc/self/cgroup (or mountinfo) that
// only a containerised process shows.
var cgroupHints = []string{"/docker/", "/docker-", "/kubepods", "/lxc/", "/containerd", "/libpod", "/machine.slice/"}

var mountHints = []string{"/docker/containers/", "/kubepods", "/containerd/", "/libpod", "/kubelet/pods/"}

// Environment detects where the process runs. It checks, in order and
// stopping at the first match:
//
//  1. Kubernetes: KUBERNETES_SERVICE_HOST is set, or the service-account
//     directory /var/run/secrets/kubernetes.io/serviceaccount exists;
//  2. Docker: /.dockerenv exists;
//  3. Container: the "container" environment variable is set (podman,
//     systemd-nspawn), /run/.containerenv exists, or /proc/self/cgroup or
//     /proc/self/mountinfo names a container runtime;
//  4. otherwise BareMetal.
func (d Detector) Environment() Environment {
	if d.getenv("KUBERNETES_SERVICE_HOST") != "" || exists(d.path(serviceAccount)) {
		return Kubernetes
	}
	if exists(d.path(dockerEnvFile)) {
		return Docker
	}
	if d.getenv("container") != "" || exists(d.path(podmanEnvFile)) {
		return Container
	}
	if s, err := readFile(d.path(procSelfCgroup)); err == nil && containsAny(s, cgroupHints) {
		return Container
	}
	if s, err := readFile(d.path(procSelfMounts)); err == nil && containsAny(s, mountHints) {
		return Container
	}
	return BareMetal
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// ContainerID returns the 64-hex-digit ID of the container the process runs
// in, found in /proc/self/cgroup (cgroup v1, or v2 without a cgroup
// namespace) or in the /containers/<id>/ mount sources of
// /proc/self/mountinfo (Docker with a cgroup namespace). It returns "" when
// no ID is found. Call it in a container only: on a host that runs
// containers the mounts name other containers.
func (d Detector) ContainerID() string {
	if s, err := readFile(d.path(procSelfCgroup)); err == nil {
		if id := lastHexID(s); id != "" {
			return id
		}
	}
	if s, err := readFile(d.path(procSelfMounts)); err == nil {
		for line := range strings.Lines(s) {
			for _, marker := range []string{"/containers/", "/sandboxes/"} {
				if i := strings.Index(line, marker); i >= 0 {
					if id := firstHexID(line[i+len(marker):]); id != "" {
						return id
					}
				}
			}
		}
	}
	return ""
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// hexIDs calls fn for every run of exactly 64 lowercase hex digits in s, in
// order, and stops when fn returns false.
func hexIDs(s string, fn func(string) bool) {
	for i := 0; i < len(s); {
		if !isHex(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isHex(s[j]) {
			j++
		}
		if j-i == 64 && !fn(s[i:j]) {
			return
		}
		i = j
	}
}

func firstHexID(s string) (id string) {
	hexIDs(s, func(h string) bool { id = h; return false })
	return id
}

func lastHexID(s string) (id string) {
	hexIDs(s, func(h string) bool { id = h; return true })
	return id
}

// DefaultAppEnv is the application environment when none is set.
const DefaultAppEnv = "development"

// AppEnv returns the application environment: APP_ENV, else ENVIRONMENT,
// else ENV, else "development". The value is trimmed and lower-cased.
func (d Detector) AppEnv() string {
	for _, k := range []string{"APP_ENV", "ENVIRONMENT", "ENV"} {
		if v := strings.TrimSpace(d.getenv(k)); v != "" {
			return strings.ToLower(v)
		}
	}
	return DefaultAppEnv
}

// IsProduction reports whether AppEnv names production.
func (d Detector) IsProduction() bool { return IsProduction(d.AppEnv()) }

// IsProduction reports whether env is "production" or "prod", ignoring
// case and surrounding space. Insecure options (plaintext caches, skipped
// TLS verification) should refuse to run when it is true.
func IsProduction(env string) bool {
	env = strings.TrimSpace(env)
	return strings.EqualFold(env, "production") || strings.EqualFold(env, "prod")
}
