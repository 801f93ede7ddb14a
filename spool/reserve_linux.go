//go:build linux

package spool

import (
	"errors"
	"os"
	"syscall"
)

// preallocate allocates the blocks of the first n bytes of f (fallocate),
// extending it to n bytes, without writing them. It returns
// errPreallocUnsupported when the file system cannot.
func preallocate(f *os.File, n int64) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fallocate(int(fd), 0, 0, n)
			if !errors.Is(serr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	switch {
	case serr == nil:
		return nil
	case errors.Is(serr, syscall.EOPNOTSUPP), errors.Is(serr, syscall.ENOSYS), errors.Is(serr, syscall.EINVAL):
		return errPreallocUnsupported
	}
	return &os.PathError{Op: "fallocate", Path: f.Name(), Err: serr}
}
