package keeltest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
)

func TestSyncBufferConcurrentWriters(t *testing.T) {
	var b SyncBuffer
	if b.Lines() != nil {
		t.Fatalf("empty buffer: %q", b.Lines())
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				fmt.Fprintf(&b, "w%d-%d\n", i, j)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	lines := b.Lines()
	if len(lines) != 800 {
		t.Fatalf("%d lines, want 800", len(lines))
	}
	if !slices.Contains(lines, "w7-99") {
		t.Fatal("a line is missing")
	}
}
