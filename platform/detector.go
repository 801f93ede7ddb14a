package platform

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// maxFileBytes bounds every read of a kernel or runtime file, so an odd or
// hostile file cannot make detection allocate without limit.
const maxFileBytes = 256 << 10

// Well-known locations, relative to Detector.Root.
const (
	cgroupDir        = "sys/fs/cgroup"
	procSelfCgroup   = "proc/self/cgroup"
	procSelfMounts   = "proc/self/mountinfo"
	serviceAccount   = "var/run/secrets/kubernetes.io/serviceaccount"
	dockerEnvFile    = ".dockerenv"
	podmanEnvFile    = "run/.containerenv"
	namespaceFile    = serviceAccount + "/namespace"
	serviceTokenFile = serviceAccount + "/token"
)

// ErrMalformed is matched (through errors.Is) by every *ParseError: a kernel
// or runtime file held something that is not what the kernel writes there.
var ErrMalformed = errors.New("platform: malformed file")

// ErrUnavailable reports that a value cannot be read on this machine, for
// example the memory usage of a process that runs in no memory cgroup.
var ErrUnavailable = errors.New("platform: value unavailable")

// ParseError names a file whose content could not be parsed.
type ParseError struct {
	Path    string // the file, as read (under Detector.Root)
	Content string // the offending content, shortened to 64 bytes
	Err     error  // what was wrong
}

// Error implements error.
func (e *ParseError) Error() string {
	return fmt.Sprintf("platform: cannot parse %s (content %q): %v; the value is ignored, check the container runtime's cgroup setup", e.Path, e.Content, e.Err)
}

// Unwrap returns the cause.
func (e *ParseError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrMalformed) true.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

func newParseError(path, content string, err error) *ParseError {
	c := strings.TrimSpace(content)
	if len(c) > 64 {
		c = c[:64] + "..."
	}
	return &ParseError{Path: path, Content: c, Err: err}
}

// Detector reads the environment, the kernel's cgroup files and the
// Kubernetes service-account directory. The zero value reads the real
// machine. A Detector holds no state and is safe for concurrent use.
type Detector struct {
	// Root is prepended to every absolute path read: /sys/fs/cgroup,
	// /proc/self/cgroup, /var/run/secrets/kubernetes.io/..., /.dockerenv.
	// Empty means "/". Tests point it at a temporary directory.
	Root string
	// Getenv reads an environment variable. Nil means os.Getenv.
	Getenv func(string) string
}

func (d Detector) getenv(key string) string {
	if d.Getenv != nil {
		return d.Getenv(key)
	}
	return os.Getenv(key)
}

func (d Detector) path(rel string) string {
	root := d.Root
	if root == "" {
		root = "/"
	}
	return filepath.Join(root, filepath.FromSlash(rel))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// readFile reads at most maxFileBytes of path. A missing file gives
// fs.ErrNotExist (wrapped).
func readFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileBytes))
	if err != nil {
		return "", fmt.Errorf("platform: read %s: %w", path, err)
	}
	return string(b), nil
}

func notExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

// Info is what Detect found. The limits are those at detection time; use
// the Detector's readers (MemoryLimit, MemoryUsage, CPUQuota) for live
// values.
type Info struct {
	// Environment is where the process runs.
	Environment Environment `json:"environment"`
	// PodName is POD_NAME, else HOSTNAME on Kubernetes.
	PodName string `json:"pod_name,omitempty"`
	// Namespace is POD_NAMESPACE, else the service-account namespace file.
	Namespace string `json:"namespace,omitempty"`
	// NodeName is NODE_NAME.
	NodeName string `json:"node_name,omitempty"`
	// ContainerID is the 64-hex-digit container ID found in the process's
	// cgroup path or in its mounts, inside a container only.
	ContainerID string `json:"container_id,omitempty"`
	// CgroupVersion is 2, 1, or 0 when no cgroup hierarchy is mounted.
	CgroupVersion int `json:"cgroup_version"`
	// MemoryLimitBytes is the effective memory limit; 0 means unlimited.
	MemoryLimitBytes int64 `json:"memory_limit_bytes"`
	// CPUQuota is the CPU quota in CPUs; 0 means unlimited.
	CPUQuota float64 `json:"cpu_quota"`
	// AppEnv is the application environment (see Detector.AppEnv).
	AppEnv string `json:"app_env"`
}

// Detect reads everything Info holds. It never fails as a whole: a file it
// cannot parse leaves its value at zero and is reported in the returned
// error (a join of *ParseError), which callers should log as a warning.
func (d Detector) Detect() (Info, error) {
	env := d.Environment()
	info := Info{
		Environment:   env,
		PodName:       d.PodName(),
		Namespace:     d.Namespace(),
		NodeName:      d.getenv("NODE_NAME"),
		CgroupVersion: d.CgroupVersion(),
		AppEnv:        d.AppEnv(),
	}
	if env.IsContainer() {
		info.ContainerID = d.ContainerID()
	}
	var errs []error
	mem, err := d.MemoryLimit()
	if err != nil {
		errs = append(errs, err)
	}
	info.MemoryLimitBytes = mem
	cpu, err := d.CPUQuota()
	if err != nil {
		errs = append(errs, err)
	}
	info.CPUQuota = cpu
	return info, errors.Join(errs...)
}

// PodName returns POD_NAME, else HOSTNAME when running on Kubernetes (where
// the hostname is the pod name), else "".
func (d Detector) PodName() string {
	if v := d.getenv("POD_NAME"); v != "" {
		return v
	}
	if d.Environment() == Kubernetes {
		return d.getenv("HOSTNAME")
	}
	return ""
}

// Namespace returns POD_NAMESPACE, else the content of the service-account
// namespace file, else "".
func (d Detector) Namespace() string {
	if v := d.getenv("POD_NAMESPACE"); v != "" {
		return v
	}
	s, err := readFile(d.path(namespaceFile))
	if err != nil {
		return ""
	}
	s = strings.TrimSpace(s)
	// A namespace is a DNS label: refuse anything else rather than pass
	// odd bytes into logs and metric labels.
	if len(s) > 63 || strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-')
	}) >= 0 {
		return ""
	}
	return s
}

var current = sync.OnceValues(func() (Info, error) { return Detector{}.Detect() })

// Current returns the Info of the real machine, detected once per process
// (the first call does the work), and the detection warnings.
func Current() (Info, error) { return current() }
