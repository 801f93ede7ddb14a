package transport

// DefaultMaxRecords is the record cap of a zero Limits.
const DefaultMaxRecords = 1000

// Limits bounds one Recv. MaxBytes is a soft cap on the sum of payload
// sizes: a receiver stops adding records once the sum reaches it, with a
// floor of one record, so one poll holds at most MaxBytes plus one record.
type Limits struct {
	// MaxRecords caps the records returned; 0 means DefaultMaxRecords.
	MaxRecords int
	// MaxBytes is the soft byte cap; 0 means no byte cap.
	MaxBytes int64
}

// Normalize returns the limits with defaults applied.
func (l Limits) Normalize() Limits {
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultMaxRecords
	}
	if l.MaxBytes < 0 {
		l.MaxBytes = 0
	}
	return l
}

// Full reports whether a batch holding records records of bytes payload
// bytes must take no more. It is never full at zero records (the floor).
func (l Limits) Full(records int, bytes int64) bool {
	if records == 0 {
		return false
	}
	if records >= l.Normalize().MaxRecords {
		return true
	}
	return l.MaxBytes > 0 && bytes >= l.MaxBytes
}
