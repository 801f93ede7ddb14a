// Package gated brakes a transport.Receiver that has no native pause with
// a governor.Gate: while the gate is held, Recv does not call the inner
// receiver at all, so nothing more is taken from the source until the
// pressure falls. It waits for the gate's release edge (re-evaluating the
// gate every interval, so it needs no other evaluator) or for its context,
// and never drops a record: what is not received stays in the source.
// Commit, Close, Health and Name pass straight through, never gated.
//
// Only sources are braked. Nothing here wraps a sender: the drain is what
// frees memory, and gating it would deadlock.
//
// With a governor, Governed wires the governor's own gate and
// self_regulation.interval, and returns the receiver unchanged when
// self-regulation is off (a nil *governor.Governor):
//
//	gov, err := governor.New(cfg, governor.WithMemory(guard))
//	if err != nil { return err }
//	go gov.Run(ctx)
//	eng, _ := engine.New(engine.Config{Memory: guard, Budget: gov.Budget()})
//	err = eng.RunGoverned(ctx, gated.Governed(gov, receiver), process, sink)
//
// For a gate of its own (one gate per source, see Governor.NewGate):
//
//	rx := gated.New(receiver, gov.NewGate("file", nil), gated.WithInterval(50*time.Millisecond))
//
// A receiver with a native pause (a Kafka consumer pausing its
// partitions, an HTTP receiver answering 503 through Gate.Admit) takes an
// actuator instead (governor.WithActuator, Governor.NewGate) and needs no
// wrapper.
package gated
