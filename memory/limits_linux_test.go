//go:build linux

package memory

import "testing"

// On Linux the guard always has a limit: the cgroup's, else the system
// memory from /proc/meminfo. The pressure ratio that the governor, the
// worker pool's scaler and the scaling signal read is therefore never the
// constant 0 of a guard without a limit, in a container or on bare metal.
func TestGuardOnThisMachineHasALimit(t *testing.T) {
	isolate(t)
	g, err := New(Config{}, WithMetrics(testRegistry()), WithLogger(quietLogger()))
	if err != nil {
		t.Fatal(err)
	}
	lim := g.Limits()
	switch lim.Source {
	case SourceCgroupV1, SourceCgroupV2, SourceSystem:
	default:
		t.Fatalf("limit source %q on Linux (limits %+v): want a cgroup or the system memory", lim.Source, lim)
	}
	if lim.SystemBytes <= 0 {
		t.Fatalf("no system memory read from /proc/meminfo: %+v", lim)
	}
	base := lim.CgroupBytes
	if base == 0 {
		base = lim.SystemBytes
	}
	if want := fraction(base, DefaultHeadroomFraction); g.Limit() != want || !g.Hard() {
		t.Fatalf("limit %d (hard %v), want %d: %v of %d", g.Limit(), g.Hard(), want, DefaultHeadroomFraction, base)
	}
	g.Add(g.Limit() / 2)
	defer g.Release(g.Limit() / 2)
	if r := g.PressureRatio(); r < 0.49 || r > 0.51 {
		t.Fatalf("pressure ratio %v with half the limit accounted", r)
	}
}
