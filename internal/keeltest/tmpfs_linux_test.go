//go:build linux

package keeltest

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestMountTmpfsFills(t *testing.T) {
	dir := MountTmpfs(t, 64<<10)
	err := os.WriteFile(filepath.Join(dir, "big"), make([]byte, 256<<10), 0o644)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing 256 KiB on a 64 KiB tmpfs: %v, want ENOSPC", err)
	}
}
