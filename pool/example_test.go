package pool_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/keel-go/keel/pool"
)

func ExampleMap() {
	p, err := pool.New(pool.Config{}) // target = GOMAXPROCS
	if err != nil {
		fmt.Println(err)
		return
	}
	defer p.Close()

	lines := []string{"1", "2", "x", "4"}
	nums, errs := pool.Map(context.Background(), p, lines, func(_ context.Context, _ int, s string) (int, error) {
		return strconv.Atoi(s)
	})
	fmt.Println(nums)
	for i, err := range errs {
		if err != nil {
			fmt.Printf("line %d: %v\n", i, err)
		}
	}
	// Output:
	// [1 2 0 4]
	// line 2: strconv.Atoi: parsing "x": invalid syntax
}

func ExampleMap_panic() {
	// The pool also logs each panic (rate-limited); discarded here.
	p, _ := pool.New(pool.Config{}, pool.WithLogger(slog.New(slog.DiscardHandler)))
	defer p.Close()

	_, errs := pool.Map(context.Background(), p, []int{1, 0, 2}, func(_ context.Context, _ int, d int) (int, error) {
		return 10 / d, nil // panics for d == 0
	})
	var pe *pool.PanicError
	fmt.Println(errs[0], errors.As(errs[1], &pe), errs[2])
	// Output: <nil> true <nil>
}

func ExampleFanOut() {
	p, _ := pool.New(pool.Config{MaxWorkers: 8, ItemTimeout: time.Second})
	defer p.Close()

	urls := []string{"a", "b", "c"}
	results, err := pool.FanOut(context.Background(), p, urls, func(ctx context.Context, _ int, u string) (string, error) {
		return "fetched " + u, nil // an HTTP call in real code, bounded by ctx
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	bodies, errs := pool.Collect(results, len(urls))
	fmt.Println(bodies, errs == nil)
	// Output: [fetched a fetched b fetched c] true
}

func ExampleGo() {
	p, _ := pool.New(pool.Config{})
	defer p.Close()

	f, err := pool.Go(context.Background(), p, func(ctx context.Context) (int, error) {
		return 6 * 7, nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	v, err := f.Wait(context.Background())
	fmt.Println(v, err)
	// Output: 42 <nil>
}

func ExamplePool_SetTarget() {
	p, _ := pool.New(pool.Config{MinWorkers: 2, MaxWorkers: 8})
	defer p.Close()

	// A scaler moves the target; SetTarget clamps it to [min, max].
	fmt.Println(p.SetTarget(4), p.SetTarget(100), p.SetTarget(0))
	s := p.Stats()
	fmt.Println(s.Target, s.Min, s.Max, s.Saturation())
	// Output:
	// 4 8 2
	// 2 2 8 0.25
}

func ExampleConfig_Validate() {
	err := pool.Config{MinWorkers: 4, MaxWorkers: 2}.Validate()
	fmt.Println(err)
	fmt.Println(errors.Is(err, pool.ErrInvalidConfig))
	// Output:
	// worker_pool.max_workers must be >= worker_pool.min_workers (got 2 < 4); raise max_workers or lower min_workers
	// true
}

func ExamplePool_Close() {
	p, _ := pool.New(pool.Config{})
	p.Close() // waits for accepted work
	_, err := pool.Go(context.Background(), p, func(context.Context) (int, error) { return 0, nil })
	fmt.Println(errors.Is(err, pool.ErrClosed))
	// Output: true
}
