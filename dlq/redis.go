package dlq

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisOptions wires a RedisBackend.
type RedisOptions struct {
	// Client, when set, is used instead of one built from the URL (and is
	// not closed by Close).
	Client redis.UniversalClient
}

// RedisBackend adds each entry to a stream with one pipelined
// XADD <stream_key> [MAXLEN ~ max_len] * data <json> per entry. Entries
// whose XADD failed are reported by index.
type RedisBackend struct {
	client  redis.UniversalClient
	own     bool
	key     string
	maxLen  int64
	timeout time.Duration
}

// NewRedisBackend returns the backend. It does not connect until the first
// write.
func NewRedisBackend(cfg RedisConfig, opts RedisOptions) (*RedisBackend, error) {
	cfg.Enabled = true
	if err := (Config{Redis: cfg}).Validate(); err != nil {
		return nil, err
	}
	b := &RedisBackend{client: opts.Client, key: cfg.StreamKey, maxLen: cfg.MaxLen, timeout: cfg.Timeout}
	if b.key == "" {
		b.key = DefaultRedisStreamKey
	}
	if b.timeout == 0 {
		b.timeout = DefaultRedisTimeout
	}
	if b.client == nil {
		u := cfg.URL.Expose()
		if u == "" {
			u = DefaultRedisURL
		}
		o, err := redis.ParseURL(u)
		if err != nil {
			return nil, &ConfigError{Key: Section + ".redis.url", Msg: "is not a redis:// or rediss:// URL"}
		}
		b.client = redis.NewClient(o)
		b.own = true
	}
	return b, nil
}

// Name returns "redis".
func (b *RedisBackend) Name() string { return BackendRedis }

// StreamKey returns the stream the entries go to.
func (b *RedisBackend) StreamKey() string { return b.key }

// Write adds the entries in one pipeline.
func (b *RedisBackend) Write(ctx context.Context, entries []Encoded) error {
	ctx, cancel := context.WithTimeout(ctx, b.timeout)
	defer cancel()
	pipe := b.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(entries))
	for i := range entries {
		a := &redis.XAddArgs{Stream: b.key, ID: "*", Values: []any{"data", entries[i].JSON}}
		if b.maxLen > 0 {
			a.MaxLen = b.maxLen
			a.Approx = true
		}
		cmds[i] = pipe.XAdd(ctx, a)
	}
	_, execErr := pipe.Exec(ctx)
	var failed []int
	var first error
	for i, c := range cmds {
		if err := c.Err(); err != nil {
			failed = append(failed, i)
			if first == nil {
				first = err
			}
		}
	}
	if len(failed) == 0 {
		if execErr != nil && !errors.Is(execErr, redis.Nil) {
			return &BackendError{Backend: BackendRedis, Op: "write", Err: execErr}
		}
		return nil
	}
	werr := &BackendError{Backend: BackendRedis, Op: "write", Err: fmt.Errorf("XADD %s: %d of %d failed: %w", b.key, len(failed), len(entries), first)}
	if len(failed) == len(entries) {
		return werr
	}
	return &PartialError{Failed: failed, Err: werr}
}

// Close closes the client it built.
func (b *RedisBackend) Close(context.Context) error {
	if !b.own {
		return nil
	}
	if err := b.client.Close(); err != nil {
		return &BackendError{Backend: BackendRedis, Op: "close", Err: err}
	}
	return nil
}
