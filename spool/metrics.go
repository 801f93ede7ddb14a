package spool

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keel-go/keel/metrics"
)

// Corruption kinds, the kind label of keel_spool_corruptions_total.
const (
	// KindChecksum is a damaged span inside a segment, followed by intact
	// frames: it was skipped.
	KindChecksum = "checksum"
	// KindTornTail is damaged or incomplete data running to the end of a
	// segment: truncated at open for the newest segment, skipped otherwise.
	KindTornTail = "torn_tail"
	// KindSegment is a segment whose header is unreadable: the file was set
	// aside as <name>.corrupt.
	KindSegment = "segment"
	// KindDecode is an intact frame whose payload the segment's codec
	// could not decode: skipped.
	KindDecode = "decode"
)

var corruptionKinds = []string{KindChecksum, KindTornTail, KindSegment, KindDecode}

// fsyncBuckets are the buckets of keel_spool_fsync_duration_seconds.
var fsyncBuckets = []float64{50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

// instruments are one spool's series (label spool=<name>), resolved once at
// Open so that the hot path never looks a label up.
type instruments struct {
	bytes       prometheus.Gauge
	records     prometheus.Gauge
	diskBytes   prometheus.Gauge
	segments    prometheus.Gauge
	oldestAge   prometheus.Gauge
	freeDisk    prometheus.Gauge
	writes      prometheus.Counter
	writeBytes  prometheus.Counter
	reads       prometheus.Counter
	acks        prometheus.Counter
	lost        prometheus.Counter
	truncated   prometheus.Counter
	corruptions map[string]prometheus.Counter
	drops       map[FullPolicy]prometheus.Counter
	full        map[string]prometheus.Counter
	fsync       prometheus.Observer
}

func newInstruments(reg *metrics.Registry, name string) *instruments {
	v := registerVecs(metrics.OrDefault(reg))
	ins := &instruments{
		bytes:       v.bytes.With(name),
		records:     v.records.With(name),
		diskBytes:   v.diskBytes.With(name),
		segments:    v.segments.With(name),
		oldestAge:   v.oldestAge.With(name),
		freeDisk:    v.freeDisk.With(name),
		writes:      v.writes.With(name),
		writeBytes:  v.writeBytes.With(name),
		reads:       v.reads.With(name),
		acks:        v.acks.With(name),
		lost:        v.lost.With(name),
		truncated:   v.truncated.With(name),
		corruptions: make(map[string]prometheus.Counter, len(corruptionKinds)),
		drops:       make(map[FullPolicy]prometheus.Counter, 2),
		full:        make(map[string]prometheus.Counter, 4),
		fsync:       v.fsync.With(name),
	}
	for _, k := range corruptionKinds {
		ins.corruptions[k] = v.corruptions.With(name, k)
	}
	for _, p := range []FullPolicy{DropNewest, DropOldest} {
		ins.drops[p] = v.drops.With(name, string(p))
	}
	for _, r := range []string{ReasonMaxBytes, ReasonMaxRecords, ReasonMinFreeBytes, ReasonDiskFull} {
		ins.full[r] = v.full.With(name, r)
	}
	ins.freeDisk.Set(-1)
	return ins
}

// RegisterMetrics registers the keel_spool_* metrics on reg (nil means
// metrics.Default()) without opening a spool, so that a metrics manifest
// lists them before any spool exists. Open registers them too.
func RegisterMetrics(reg *metrics.Registry) { registerVecs(metrics.OrDefault(reg)) }

// vecs are the keel_spool_* vectors, labelled by spool.
type vecs struct {
	bytes, records, diskBytes, segments, oldestAge, freeDisk *metrics.GaugeVec
	writes, writeBytes, reads, acks, lost, truncated         *metrics.CounterVec
	corruptions, drops, full                                 *metrics.CounterVec
	fsync                                                    *metrics.HistogramVec
}

// registerVecs registers the spool's metric vectors on reg, or returns
// them when they already are.
func registerVecs(reg *metrics.Registry) vecs {
	o := func(n, help, unit string) metrics.Opts {
		return metrics.Opts{Namespace: "keel", Subsystem: "spool", Name: n, Help: help, Unit: unit, Group: "spool"}
	}
	return vecs{
		bytes: reg.GaugeVec(o("bytes",
			"Unacknowledged bytes in the spool (frames with their headers), the quantity spool.max_bytes bounds.", "bytes"), "spool"),
		records: reg.GaugeVec(o("records",
			"Unacknowledged records in the spool.", ""), "spool"),
		diskBytes: reg.GaugeVec(o("disk_bytes",
			"Bytes of the spool's segment files on disk, acknowledged records awaiting segment deletion included.", "bytes"), "spool"),
		segments: reg.GaugeVec(o("segments",
			"Segment files of the spool.", ""), "spool"),
		oldestAge: reg.GaugeVec(o("oldest_record_age_seconds",
			"Age of the oldest unacknowledged record (0 when the spool is empty), refreshed every second.", "seconds"), "spool"),
		freeDisk: reg.GaugeVec(o("free_disk_bytes",
			"Free bytes on the spool's volume at the last statfs (-1 when unknown).", "bytes"), "spool"),
		writes: reg.CounterVec(o("writes_total",
			"Records appended to the spool.", ""), "spool"),
		writeBytes: reg.CounterVec(o("write_bytes_total",
			"Payload bytes appended to the spool, before compression.", "bytes"), "spool"),
		reads: reg.CounterVec(o("reads_total",
			"Records handed to a reader (redeliveries after Rewind or a restart included).", ""), "spool"),
		acks: reg.CounterVec(o("acks_total",
			"Records acknowledged and so removed from the spool.", ""), "spool"),
		lost: reg.CounterVec(o("lost_records_total",
			"Records known lost to damage on disk, or appended but not on disk after a crash (sequence numbers missing; see the sync policy for what a crash can lose).", ""), "spool"),
		truncated: reg.CounterVec(o("truncated_bytes_total",
			"Bytes of torn or damaged tail cut from the newest segment at open.", "bytes"), "spool"),
		fsync: reg.HistogramVec(o("fsync_duration_seconds",
			"Duration of one fsync of a segment or the ledger.", "seconds"), fsyncBuckets, "spool"),
		corruptions: reg.CounterVec(o("corruptions_total",
			"Damaged data found in the spool and skipped, by kind: checksum (damaged span), torn_tail (incomplete tail), segment (unreadable segment set aside), decode (payload the codec rejected).", ""), "spool", "kind"),
		drops: reg.CounterVec(o("drops_total",
			"Records discarded because the spool was full, by policy: drop_newest (the new record) or drop_oldest (an unacknowledged record).", ""), "spool", "policy"),
		full: reg.CounterVec(o("full_total",
			"Appends that found the spool full, by the bound that was hit (whatever the policy did next).", ""), "spool", "reason"),
	}
}
