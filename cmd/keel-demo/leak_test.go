package main

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that a demo run leaves no goroutine behind: the cluster,
// the generator, the progress loop and the runtime all stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
