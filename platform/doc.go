// Package platform tells a service where it runs and what it may use.
//
// It detects the environment (Kubernetes, Docker, another container
// runtime, or bare metal), the pod identity Kubernetes passes through the
// downward API (POD_NAME, POD_NAMESPACE, NODE_NAME), the memory and CPU
// limits of the process's cgroup (v1 and v2), the runtime directories a
// service should use, and whether the application environment is
// production.
//
// Everything goes through a Detector. Its zero value reads the real
// filesystem and environment; tests point Root at a temporary directory
// holding fake /sys/fs/cgroup and /proc files and replace Getenv:
//
//	d := platform.Detector{}           // the real machine
//	info, err := d.Detect()            // identity and limits, once
//	limit, err := d.MemoryLimit()      // live: bytes, 0 = unlimited
//	cpus, err := d.CPUQuota()          // live: CPUs, 0 = unlimited
//	paths := d.Paths("orders")         // config, data, cache, logs, tmp, run
//
// Current returns a Detect result computed once per process.
//
// # Cgroup limits
//
// The memory limit is the smallest limit on the path from the process's
// cgroup (read from /proc/self/cgroup) up to the cgroup root. On cgroup v2
// it is memory.max capped by memory.high (the point where the kernel starts
// to throttle and reclaim); "max" means no limit. On cgroup v1 it is
// memory.limit_in_bytes; the kernel reports "no limit" as a number close to
// math.MaxInt64, so any value at or above 2^62 counts as no limit. A limit
// of 0 in every API of this package means unlimited.
//
// The CPU quota is cpu.max ("quota period") on v2 and cpu.cfs_quota_us
// divided by cpu.cfs_period_us on v1, as a fractional number of CPUs.
//
// Files that hold something else than the kernel writes there never cause a
// panic: the reader returns a *ParseError (matching ErrMalformed) that names
// the file and its content, and treats the value as absent.
//
// # Runtime paths
//
// In a container (Kubernetes, Docker or another runtime) the directories
// sit under one base, /app unless CONTAINER_BASE_PATH says otherwise:
// /app/config, /app/data, /app/cache, /app/logs, /app/tmp and /app/run. One
// base means one volume to mount and one place to make writable under a
// read-only root filesystem. On a host the XDG base directories are used,
// each with the application name appended: $XDG_CONFIG_HOME (~/.config),
// $XDG_DATA_HOME (~/.local/share), $XDG_CACHE_HOME (~/.cache),
// $XDG_STATE_HOME/<app>/logs (~/.local/state), $TMPDIR (/tmp) and
// $XDG_RUNTIME_DIR (else <tmp>/<app>/run). Relative XDG values are ignored,
// as the XDG specification requires.
package platform
