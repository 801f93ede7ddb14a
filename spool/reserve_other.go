//go:build !linux

package spool

import "os"

// preallocate is not available on this platform: the space reserve is
// written with zeros instead.
func preallocate(*os.File, int64) error { return errPreallocUnsupported }
