package config

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Watch keeps the configuration current until ctx is done, then returns
// nil. It reloads the whole cascade (see Reload) when:
//
//   - a candidate file changes: every path the cascade looked at (found or
//     not, .env included) is polled every PollInterval, comparing the
//     symlink-resolved target, modification time and size, so a new file,
//     a deleted file and a Kubernetes ConfigMap "..data" symlink swap are
//     all seen;
//   - the process receives SIGHUP (unless DisableSIGHUP);
//   - Period elapses, when set.
//
// Triggers are debounced: the reload runs Debounce after the first
// trigger, and triggers in between are folded into it, so a burst of
// writes gives one reload that reads the last of them, and a steady stream
// of triggers cannot postpone reloading forever. A failed reload keeps the old configuration, is logged and
// counted, and is not retried until a file changes again (or SIGHUP or
// Period fire). Watch starts no goroutine; only one Watch may run on a
// Config at a time (ErrAlreadyWatching).
func (c *Config) Watch(ctx context.Context, opts WatchOptions) error {
	if !c.watching.CompareAndSwap(false, true) {
		return ErrAlreadyWatching
	}
	defer c.watching.Store(false)
	o := opts.withDefaults()

	var hup chan os.Signal
	if !o.DisableSIGHUP {
		hup = make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	var pollC <-chan time.Time
	if o.PollInterval > 0 {
		t := time.NewTicker(o.PollInterval)
		defer t.Stop()
		pollC = t.C
	}
	var periodC <-chan time.Time
	if o.Period > 0 {
		t := time.NewTicker(o.Period)
		defer t.Stop()
		periodC = t.C
	}
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	var debounceC <-chan time.Time
	pending := ""

	seen := c.cur.Load().stamps
	if c.watchStarted != nil {
		close(c.watchStarted)
	}

	run := func(trigger string) {
		res := c.reload(ctx, trigger)
		if res.Err == nil {
			seen = c.cur.Load().stamps
		}
		if o.OnReload != nil {
			o.OnReload(res)
		}
	}
	fire := func(trigger string) {
		if o.Debounce < 0 {
			run(trigger)
			return
		}
		if pending != "" {
			return // folded into the reload already scheduled
		}
		pending = trigger
		debounce.Reset(o.Debounce)
		debounceC = debounce.C
	}

	for {
		select {
		case <-ctx.Done():
			return nil
		case <-pollC:
			now, changed := restamp(c.cur.Load().stamps, seen)
			if changed {
				seen = now
				fire("file")
			}
		case <-hup:
			fire("sighup")
		case <-periodC:
			fire("period")
		case <-debounceC:
			debounceC = nil
			trigger := pending
			pending = ""
			if ctx.Err() != nil {
				return nil
			}
			run(trigger)
		}
	}
}

// restamp stats the candidate paths of the live state and reports whether
// any differs from seen. A path whose stat fails counts as changed, so
// the reload reports the error.
func restamp(live, seen []stamp) ([]stamp, bool) {
	now := make([]stamp, len(live))
	changed := len(live) != len(seen)
	for i, s := range live {
		n, err := stampOf(s.path)
		if err != nil {
			n = stamp{path: s.path, target: "error: " + err.Error()}
		}
		now[i] = n
		if !changed && n != seen[i] {
			changed = true
		}
	}
	return now, changed
}
