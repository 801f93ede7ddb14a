package scaling

import (
	"context"
	"time"
)

// Run evaluates the pressure at once and then every scaling.interval until
// ctx is cancelled, and returns nil then. A disabled Pressure is evaluated
// once (publishing 0) and Run returns nil at once. Run starts no goroutine
// of its own.
func (p *Pressure) Run(ctx context.Context) error {
	if p == nil {
		return ErrNilPressure
	}
	if ctx.Err() != nil {
		return nil
	}
	p.evaluate(ctx)
	if !p.enabled {
		return nil
	}
	t := time.NewTicker(p.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			p.evaluate(ctx)
		}
	}
}
