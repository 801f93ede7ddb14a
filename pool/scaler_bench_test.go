package pool

import (
	"testing"
)

// alternatingCPU reads 0.1 and 0.9 in turn, so every Tick moves the target.
type alternatingCPU struct{ n int }

func (a *alternatingCPU) Sample() (float64, error) {
	a.n++
	if a.n%2 == 0 {
		return 0.9, nil
	}
	return 0.1, nil
}

// BenchmarkScalerTick measures one scaling step, which runs every
// scale_interval (5 s by default), against its irreducible part in the same
// run: one read of the process's CPU time (a getrusage system call).
func BenchmarkScalerTick(b *testing.B) {
	b.Run("baseline=process-cpu-time", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := ProcessCPUTime(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decide", func(b *testing.B) {
		b.ReportAllocs()
		in := ScaleInput{CPU: 0.7, Memory: 0.3, Current: 4, Min: 1, Max: 8}
		for b.Loop() {
			in.CPU += 0.001
			if in.CPU > 1 {
				in.CPU = 0
			}
			_ = Decide(in)
		}
	})
	b.Run("cpu-meter-sample", func(b *testing.B) {
		b.ReportAllocs()
		m := NewCPUMeter(CPUMeterConfig{})
		for b.Loop() {
			if _, err := m.Sample(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("tick/steady", func(b *testing.B) {
		b.ReportAllocs()
		p := benchPool(b, Config{MinWorkers: 1, MaxWorkers: 8, InitialWorkers: 4})
		s, _ := NewScaler(p, WithCPUSampler(&scriptCPU{v: 0.7}), WithMemoryPressure(&fixedMemory{v: 0.3}))
		for b.Loop() {
			s.Tick()
		}
	})
	b.Run("tick/moving", func(b *testing.B) {
		b.ReportAllocs()
		p := benchPool(b, Config{MinWorkers: 1, MaxWorkers: 8, InitialWorkers: 4})
		s, _ := NewScaler(p, WithCPUSampler(&alternatingCPU{}), WithMemoryPressure(&fixedMemory{v: 0.3}))
		for b.Loop() {
			s.Tick()
		}
	})
	b.Run("tick/process-cpu-meter", func(b *testing.B) {
		b.ReportAllocs()
		p := benchPool(b, Config{MinWorkers: 1, MaxWorkers: 8, InitialWorkers: 4})
		s, _ := NewScaler(p, WithMemoryPressure(&fixedMemory{v: 0.3}))
		for b.Loop() {
			s.Tick()
		}
	})
}
