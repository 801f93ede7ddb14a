package memory

import "fmt"

// Level is a coarse reading of the pressure ratio, for logs, labels and
// dashboards. The hot path uses UnderPressure and TryReserve instead.
//
// With t the pressure threshold (memory.pressure_threshold, default 0.80):
//
//	Normal    ratio < min(0.5, t)
//	Elevated  min(0.5, t) <= ratio < t
//	High      t <= ratio < 1       UnderPressure is true: brake intake
//	Critical  ratio >= 1           at or over the limit: TryReserve refuses
type Level int

// Levels, from no pressure to at the limit.
const (
	// Normal: less than half the limit in use.
	Normal Level = iota
	// Elevated: half the limit or more, below the pressure threshold.
	Elevated
	// High: at or above the pressure threshold, below the limit.
	High
	// Critical: at or over the limit.
	Critical
)

var levelNames = [...]string{"normal", "elevated", "high", "critical"}

// String returns "normal", "elevated", "high" or "critical".
func (l Level) String() string {
	if l >= 0 && int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// MarshalText encodes the level as its name, for JSON and logs.
func (l Level) MarshalText() ([]byte, error) {
	if l < 0 || int(l) >= len(levelNames) {
		return nil, fmt.Errorf("memory: unknown level %d", int(l))
	}
	return []byte(levelNames[l]), nil
}

// UnmarshalText decodes a level name as String prints it.
func (l *Level) UnmarshalText(b []byte) error {
	for i, n := range levelNames {
		if string(b) == n {
			*l = Level(i)
			return nil
		}
	}
	return fmt.Errorf("memory: unknown level %q: want normal, elevated, high or critical", b)
}

// levelOf classifies a ratio against threshold t.
func levelOf(ratio, t float64) Level {
	switch {
	case ratio >= 1:
		return Critical
	case ratio >= t:
		return High
	case ratio >= min(0.5, t):
		return Elevated
	}
	return Normal
}
