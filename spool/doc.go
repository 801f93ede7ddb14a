// Package spool is a durable first-in, first-out queue of byte records on
// local disk: the place a service puts work it has accepted but cannot
// deliver yet, and drains in order once the downstream recovers.
//
// # Start
//
//	sp, err := spool.Open(ctx, spool.Config{Dir: "/var/lib/orders/spool"})
//	if err != nil {
//		return err // names the bad spool.* key, or the directory
//	}
//	defer sp.Close()
//
//	seq, err := sp.Append(ctx, payload) // durable per spool.sync
//
//	// The consumer: hand out, deliver, acknowledge.
//	for {
//		entries, err := sp.Peek(ctx, 500, 4<<20) // waits for records
//		if err != nil {
//			return err
//		}
//		if err := deliver(ctx, entries); err != nil {
//			sp.Rewind() // hand them out again later
//			continue
//		}
//		if err := sp.Ack(entries[len(entries)-1].Seq); err != nil {
//			return err
//		}
//	}
//
// # Model
//
// Every appended record gets a sequence number, one more than the previous,
// also across restarts. Peek hands records out in that order, each once,
// until Rewind (or a restart) hands the unacknowledged ones out again. Ack
// is cumulative: Ack(n) acknowledges every record up to n. A record leaves
// the spool only when acknowledged (or dropped by the drop_oldest policy);
// the disk space of a segment file is returned when every record in it is.
// Delivery is therefore at-least-once: a record handed out and not
// acknowledged before a crash is handed out again after it.
//
// # On disk
//
// The directory holds segment files (<id>.seg) of about
// spool.segment_bytes, a ledger, a LOCK file (an exclusive flock, so that
// two spools never share a directory) and, under sync interval and never,
// the 128 KiB space reserve (see Crash guarantees). Each segment header
// records the codec of its payloads (spool.compression), so changing the
// compression never makes old segments unreadable. Each record is a frame
// with a magic marker, its length, its sequence number, its append time
// and a CRC32C checksum. The ledger records the write, read and
// acknowledged positions in two alternating checksummed slots.
//
// # Crash guarantees
//
// Under spool.sync always, Append writes the record to the operating
// system and fdatasyncs it before it returns (and the directory when it
// started a segment), so every record whose Append returned nil survives
// any crash: of the process (kill -9, panic, out-of-memory kill) and of the
// machine (power loss, kernel panic). Concurrent appenders share one fsync
// (group commit); batch with AppendBatch for throughput.
//
// Under interval and never, Append returns once the record is in the
// spool's write buffer. The buffer is written to the operating system in
// page-aligned chunks whenever it holds 64 KiB, and whole at every tick of
// the spool's background loop (every spool.sync_interval or every second,
// whichever is shorter, under interval; every second under never), when a
// reader reaches its records, at a segment roll, on Sync and on Close. A
// space reserve (the file "reserve" in the directory, 128 KiB, more than
// the buffer ever holds) keeps writing out what Append accepted from
// failing for lack of space: when the disk is full at that moment, the
// reserve is freed and the buffer written in its place, and appends are
// then written through (as under always, refused at once while the disk
// is full) until there is room to re-create the reserve. (Should another
// process take the freed space first, the buffered records stay in memory
// and are written at the next tick with room; Close reports them lost if
// there is none.) So:
//
//   - A crash of the process loses at most the records whose frames were
//     not yet written whole to the operating system: those in the write
//     buffer (less than 64 KiB of frames, among them the one frame a
//     page-aligned write may have cut), all appended since the last tick.
//     Everything appended before the last tick or a Sync survives it. A
//     cut frame is a torn tail that the next Open truncates (counted in
//     keel_spool_corruptions_total{kind="torn_tail"}).
//   - interval (default): at every tick the buffer is written and the
//     segments written since the last fsync, and the directory, are
//     fsynced in the background. A crash of the machine loses at most the
//     records appended since the last completed tick (about
//     spool.sync_interval, 500 ms by default, plus the time the fsync
//     takes).
//   - never: fsync happens only on Sync and Close, and in the background
//     once 16 sealed segments await one (so that open files stay bounded).
//     A crash of the machine can lose whatever the operating system had
//     not yet written back (typically the last 30 s).
//
// Flush writes the buffer out without an fsync: a caller that reports
// records as safe once appended (the tiered sink, before its source
// commits) calls it, so that those records survive a crash of the process
// under every policy.
//
// After a crash the next Open counts the records that were appended but
// are not on disk in keel_spool_lost_records_total when the ledger saw
// them (the ledger is written at every tick under always and interval, and
// at every Ack). While the space reserve cannot be created (the disk is
// full at Open), appends are written through to the operating system one
// by one, as under always, and survive a crash of the process.
//
// Acknowledgements are written to the ledger before Ack returns (they
// survive a process crash) and fsynced every spool.sync_interval under
// always and interval, on Sync and on Close. A lost acknowledgement means
// records are delivered again, never that records are lost.
//
// In every case, data damaged by a crash or by the disk is detected by the
// checksums and never delivered. At Open, a torn tail of the newest
// segment is truncated; a segment with an unreadable header is renamed
// <name>.corrupt and its records are lost; a missing or damaged ledger is
// rebuilt from the segments (every record on disk is then unacknowledged
// and delivered again). While reading, a damaged frame is skipped: the
// reader scans forward to the next intact frame and carries on, and the
// records between are counted as lost. Nothing on disk makes the spool
// panic.
//
// # Bounds
//
// spool.max_bytes (default 1 GiB) bounds the unacknowledged bytes, frame
// headers included; the disk holds at most about one segment more
// (acknowledged records whose segment is not yet wholly acknowledged).
// spool.max_records optionally bounds the record count, and
// spool.min_free_bytes (default 64 MiB) keeps free space on the volume.
// When a record does not fit, spool.full_policy decides: block (default,
// back-pressure honouring ctx), drop_newest (ErrDropped), drop_oldest or
// error (*FullError). Every drop is counted and logged (rate-limited).
//
// When the volume itself runs out of space (ENOSPC or EDQUOT) before the
// watermark noticed, the append fails at once, whatever the policy, with a
// *FullError of reason disk_full that matches ErrFull and ErrDiskFull and
// names the directory. The records appended before it stay intact and
// readable, no partial frame is left in the segment, and appends succeed
// again once space is freed.
//
// # Metrics
//
// Labelled spool=<spool.name>: keel_spool_bytes, keel_spool_records,
// keel_spool_disk_bytes, keel_spool_segments,
// keel_spool_oldest_record_age_seconds, keel_spool_free_disk_bytes,
// keel_spool_writes_total, keel_spool_write_bytes_total,
// keel_spool_reads_total, keel_spool_acks_total,
// keel_spool_corruptions_total{kind}, keel_spool_lost_records_total,
// keel_spool_truncated_bytes_total, keel_spool_drops_total{policy},
// keel_spool_full_total{reason} and keel_spool_fsync_duration_seconds.
// Stats returns the same figures; Name and PressureRatio make a Spool a
// pressure source for the governor.
//
// # Platforms
//
// The directory lock and the free-disk watermark use flock and statfs on
// Linux, macOS and FreeBSD. Elsewhere two spools on one directory are not
// detected and the watermark is off. The space reserve is allocated with
// fallocate on Linux and written with zeros elsewhere.
package spool
