//go:build linux

package keeltest

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
)

// MountTmpfs mounts a tmpfs of size bytes on a fresh directory, for tests
// of a disk that fills, and unmounts it when the test ends. It skips the
// test where mounting is not permitted (it needs CAP_SYS_ADMIN: run the
// tests as root).
func MountTmpfs(t testing.TB, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) {
			t.Skipf("mounting a %d-byte tmpfs on %s is not permitted (%v): the disk-full tests need root (CAP_SYS_ADMIN)", size, dir, err)
		}
		t.Skipf("cannot mount a tmpfs on %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}
