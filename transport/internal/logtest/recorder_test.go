package logtest

import (
	"log/slog"
	"testing"
)

func TestRecorderFindsByLevelAndMessage(t *testing.T) {
	var r Recorder
	log := slog.New(&r).With("component", "x")
	log.Warn("a", "n", 1)
	log.Info("a", "n", 2)
	log.Warn("b", "n", 3)
	log.Warn("a", "n", 4)
	got := r.Find(slog.LevelWarn, "a")
	if len(got) != 2 || got[0]["n"] != int64(1) || got[1]["n"] != int64(4) || got[0]["component"] != "x" {
		t.Fatalf("Find(warn, a) = %v", got)
	}
	if got := r.Find(slog.LevelError, "a"); len(got) != 0 {
		t.Fatalf("Find(error, a) = %v, want none", got)
	}
}
