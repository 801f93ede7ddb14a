package main

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that a demo run leaves no goroutine behind: the cluster,
// the generator, the progress loop and the runtime all stop. It removes the
// demo binary the binary tests built.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		removeBinary()
		os.Exit(code)
	}))
}
