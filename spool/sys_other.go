//go:build !(linux || darwin || freebsd)

package spool

import "os"

// lockDir creates the lock file. This platform has no flock: two spools
// on one directory are not detected.
func lockDir(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
}

// freeDisk is not available on this platform: the free-disk watermark is
// off (fail-open).
func freeDisk(string) (uint64, bool, error) { return 0, false, nil }

// syncDir is a no-op where directories cannot be fsynced.
func syncDir(string) error { return nil }
