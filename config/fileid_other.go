//go:build !unix

package config

import "io/fs"

// fileID is not available on this platform; the path, modification time
// and size still identify changes.
func fileID(fs.FileInfo) (uint64, uint64) { return 0, 0 }
