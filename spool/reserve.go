package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// The space reserve. Under sync "interval" and "never" an append returns
// while its frames may still be in the write buffer, so writing them out
// later must not fail for lack of space: the caller was told the record is
// in the spool. The spool therefore keeps a reserve file in its directory,
// reserveBytes long with its blocks allocated, more than the buffer ever
// holds of accepted frames. When writing the buffer out meets a full disk,
// the reserve is given up (truncated, its blocks freed) and the buffer is
// written in its place. From then on, and whenever the reserve cannot be
// created (a full disk at Open), appends are written through as under
// "always", refused at once while the disk is full; the loop re-creates
// the reserve at its next tick with room for it, and appends are buffered
// again.
//
// Allocating the segment files' own space ahead of the frames (fallocate
// with FALLOC_FL_KEEP_SIZE) would give the same guarantee, but ext4 then
// converts each written range from "unwritten" during writeback, which
// halves the throughput of sustained appends.
const (
	reserveName  = "reserve"
	reserveBytes = 2 * bufferFlushBytes
)

// errPreallocUnsupported is returned by preallocate where the file system
// or platform cannot allocate blocks without writing them.
var errPreallocUnsupported = errors.New("preallocation not supported")

// ensureReserveLocked makes sure the space reserve exists, creating it
// when needed, and reports whether it does. Called with bmu held.
func (s *Spool) ensureReserveLocked() bool {
	if s.resv != nil {
		return true
	}
	path := filepath.Join(s.dir, reserveName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err == nil {
		err = s.prealloc(f, reserveBytes)
		if errors.Is(err, errPreallocUnsupported) {
			_, err = f.WriteAt(make([]byte, reserveBytes), 0)
		}
		if err != nil {
			_ = f.Truncate(0)
			_ = f.Close()
			err = fmt.Errorf("allocate %s: %w", path, err)
		}
	}
	if err != nil {
		if ok, suppressed := s.resvLog.Allow(); ok {
			s.log.Warn("spool: cannot create the space reserve; appends are written through, one write each, until it can be",
				"reserve", path, "bytes", reserveBytes, "error", err, "suppressed", suppressed)
		}
		return false
	}
	s.resv = f
	return true
}

// rescueLocked is called when writing the buffer out met a full disk: it
// gives up the space reserve, writes the buffer out in its place and turns
// buffering off. Called with bmu held.
func (s *Spool) rescueLocked(seg *segment) error {
	if f := s.resv; f != nil {
		s.resv = nil
		if err := f.Truncate(0); err != nil {
			s.log.Error("spool: cannot free the space reserve", "reserve", f.Name(), "error", err)
		}
		// Some file systems (ext4) reuse freed blocks only once their
		// journal commits; an fsync commits it.
		_ = s.fsyncFile(f)
		_ = f.Close()
		s.log.Warn("spool: disk full; the space reserve was freed to write the buffered records. "+
			"Appends are written through and refused while the disk is full",
			"dir", s.dir, "buffered_bytes", len(s.wbuf))
	}
	s.bufferOn = false
	if err := s.writeOutLocked(seg, true); err != nil {
		return err
	}
	s.mu.Lock()
	seg.flushed = seg.fframe
	s.mu.Unlock()
	return nil
}

// roomForReserve reports whether the volume has room to re-create the
// space reserve and then some, so that a disk that is still full does not
// get its reserve back only to give it up again at the next append. When
// free space cannot be read it reports true.
func (s *Spool) roomForReserve() bool {
	free, ok, err := s.statfs(s.dir)
	return err != nil || !ok || free >= 2*reserveBytes
}
