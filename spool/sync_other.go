//go:build !linux

package spool

import "os"

// syncData flushes the file to stable storage (fsync; on macOS
// os.File.Sync issues F_FULLFSYNC).
func syncData(f *os.File) error { return f.Sync() }
