//go:build !race

package gated_test

// raceBuild reports a binary built with -race: the race detector's shadow
// memory is charged to the cgroup but not counted by the Go runtime.
const raceBuild = false
