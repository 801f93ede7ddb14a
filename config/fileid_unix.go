//go:build unix

package config

import (
	"io/fs"
	"syscall"
)

// fileID returns the device and inode of a file, so a file replaced by
// rename is seen even when its size and modification time match.
func fileID(fi fs.FileInfo) (uint64, uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino) //nolint:unconvert // types differ by platform
	}
	return 0, 0
}
