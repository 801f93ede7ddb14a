package spool

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is; the errors returned wrap them
// with the spool's name and directory.
var (
	// ErrInvalidConfig is matched by every error that Config.Validate and
	// Open return for a bad spool section.
	ErrInvalidConfig = errors.New("spool: invalid spool config")
	// ErrClosed is returned by every call on a closed Spool, and by calls
	// that were waiting when Close ran.
	ErrClosed = errors.New("spool: closed")
	// ErrFull is matched by a *FullError: the record did not fit under
	// spool.max_bytes, spool.max_records or spool.min_free_bytes, under the
	// "error" policy, or while waiting under the "block" policy when the
	// context ended.
	ErrFull = errors.New("spool: full")
	// ErrDiskFull is matched by a *FullError of reason ReasonDiskFull: the
	// volume holding spool.dir ran out of space (or quota) while an append
	// wrote to it. It also matches ErrFull. The append was refused whole;
	// appends succeed again once space is freed.
	ErrDiskFull = errors.New("spool: disk full")
	// ErrDropped is returned under the "drop_newest" policy when the spool
	// was full: the record (and, for AppendBatch, every later record of the
	// batch) was discarded and counted. The caller configured that loss;
	// it usually treats the record as handled.
	ErrDropped = errors.New("spool: record dropped (spool full, policy drop_newest)")
	// ErrTooLarge is returned for a record larger than
	// spool.max_record_bytes, or whose frame alone exceeds spool.max_bytes:
	// it can never fit, whatever the policy.
	ErrTooLarge = errors.New("spool: record too large")
	// ErrLocked is returned by Open when another Spool (in this or another
	// process) holds the directory.
	ErrLocked = errors.New("spool: directory is locked by another spool")
	// ErrAckAhead is returned by Ack for a sequence number that was never
	// assigned (at or above the next sequence number).
	ErrAckAhead = errors.New("spool: acknowledgement beyond the last appended record")
	// ErrBroken is matched by the error of every append after a write or
	// fsync failed in a way that leaves the state of the segment on disk
	// unknown (the operating system may have dropped the unsynced pages).
	// Close the spool and open it again: recovery re-reads what is on disk.
	ErrBroken = errors.New("spool: a write or fsync failed; close and reopen the spool")
	// ErrCorrupt is matched by an error of Open for a segment it cannot
	// safely interpret, such as a segment written in a newer format.
	ErrCorrupt = errors.New("spool: unreadable spool data")
)

// Reasons a record did not fit, as in FullError.Reason and the reason label
// of keel_spool_full_total.
const (
	// ReasonMaxBytes: the unacknowledged bytes would exceed
	// spool.max_bytes.
	ReasonMaxBytes = "max_bytes"
	// ReasonMaxRecords: the unacknowledged records would exceed
	// spool.max_records.
	ReasonMaxRecords = "max_records"
	// ReasonMinFreeBytes: the free space of the volume would drop below
	// spool.min_free_bytes.
	ReasonMinFreeBytes = "min_free_bytes"
	// ReasonDiskFull is a write refused by the operating system for lack
	// of space (ENOSPC), below the min_free_bytes watermark's radar.
	ReasonDiskFull = "disk_full"
)

// FullError reports an append that did not fit. It matches ErrFull, and
// the context error when a blocked append gave up because its context
// ended.
type FullError struct {
	// Spool is the spool's name.
	Spool string
	// Dir is the spool's directory (spool.dir).
	Dir string
	// Reason is the bound that was hit: ReasonMaxBytes, ReasonMaxRecords,
	// ReasonMinFreeBytes or ReasonDiskFull.
	Reason string
	// Limit is the configured value of that bound (0 for ReasonDiskFull).
	Limit int64
	// Policy is the spool's full policy.
	Policy FullPolicy
	// Err is the context error of a blocked append, the write error for
	// ReasonDiskFull, or nil.
	Err error
}

// Error describes the bound, the policy and what to do.
func (e *FullError) Error() string {
	var msg string
	dir := ""
	if e.Dir != "" {
		dir = " in " + e.Dir
	}
	switch e.Reason {
	case ReasonDiskFull:
		return fmt.Sprintf("spool %q: disk full%s (%v): free space on that volume or move spool.dir to a larger one; "+
			"lower spool.max_bytes or raise spool.min_free_bytes so that appends are refused before the disk fills", e.Spool, dir, e.Err)
	case ReasonMinFreeBytes:
		msg = fmt.Sprintf("spool %q full: free disk space%s would drop below spool.min_free_bytes (%d)", e.Spool, dir, e.Limit)
	default:
		msg = fmt.Sprintf("spool %q full: spool.%s (%d) reached", e.Spool, e.Reason, e.Limit)
	}
	msg += fmt.Sprintf(" (full_policy %s)", e.Policy)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	} else {
		msg += "; acknowledge records to make room, or raise the bound"
	}
	return msg
}

// Is reports whether target is ErrFull, or ErrDiskFull for
// ReasonDiskFull.
func (e *FullError) Is(target error) bool {
	return target == ErrFull || (target == ErrDiskFull && e.Reason == ReasonDiskFull)
}

// Unwrap returns the context or write error, if any.
func (e *FullError) Unwrap() error { return e.Err }

// ConfigError is one problem in the spool section. It matches
// ErrInvalidConfig.
type ConfigError struct {
	// Key is the full key, for example "spool.max_bytes".
	Key string
	// Msg is the whole message: what is wrong with Key, the value found
	// and the fix.
	Msg string
}

// Error returns Msg.
func (e *ConfigError) Error() string { return e.Msg }

// Is reports whether target is ErrInvalidConfig.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
