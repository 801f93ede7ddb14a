package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/providers/posflag"
	"github.com/knadh/koanf/v2"
	"github.com/spf13/pflag"
)

// state is one immutable, fully merged configuration.
type state struct {
	k        *koanf.Koanf
	origins  map[string]string // leaf key -> the layer that set it
	env      string
	files    []string // YAML files merged, in order
	dotenvs  []string // .env files read
	stamps   []stamp  // every candidate path, as seen when read
	version  uint64
	loadedAt time.Time
}

// stamp identifies the content of a candidate path without reading it:
// the symlink-resolved target (a ConfigMap "..data" swap changes it),
// modification time, size and, where available, device and inode (a file
// replaced by rename).
type stamp struct {
	path   string
	target string
	exists bool
	dir    bool
	mod    int64
	size   int64
	dev    uint64
	ino    uint64
}

func stampOf(path string) (stamp, error) {
	s := stamp{path: path}
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return s, nil
		}
		return s, &FileError{Path: path, Err: err}
	}
	s.exists, s.dir, s.mod, s.size = true, fi.IsDir(), fi.ModTime().UnixNano(), fi.Size()
	s.dev, s.ino = fileID(fi)
	if t, err := filepath.EvalSymlinks(path); err == nil {
		s.target = t
	}
	return s, nil
}

// builder merges layers into a state, recording where each key came from.
type builder struct {
	st *state
}

func (b *builder) layer(p koanf.Provider, pa koanf.Parser, src func(key string) string) error {
	lk := koanf.New(".")
	if err := lk.Load(p, pa); err != nil {
		return err
	}
	for _, key := range lk.Keys() {
		b.st.origins[key] = src(key)
	}
	return b.st.k.Merge(lk)
}

// yamlQuoted matches the excerpts of the document that YAML type errors
// quote; they may be secret values.
var yamlQuoted = regexp.MustCompile("`[^`]*`")

func (b *builder) file(path string) error {
	src := fmt.Sprintf("file %q", path)
	if err := b.layer(file.Provider(path), yaml.Parser(), func(string) string { return src }); err != nil {
		msg := yamlQuoted.ReplaceAllString(err.Error(), "a value")
		return &FileError{Path: path, Err: errors.New(msg)}
	}
	b.st.files = append(b.st.files, path)
	return nil
}

// configBases are the discovered file names, lowest priority first.
func configBases(env string) []string {
	return []string{"defaults", "settings", "settings." + env}
}

// load runs the whole cascade into a new state. The caller holds
// c.reloadMu (the .env bookkeeping is not safe for concurrent loads).
func (c *Config) load(ctx context.Context) (*state, error) {
	o := &c.opts
	st := &state{k: koanf.New("."), origins: make(map[string]string), loadedAt: time.Now()}
	b := &builder{st: st}

	// .env goes into the process environment first, under real variables.
	for _, p := range o.dotenvs {
		s, err := stampOf(p)
		if err != nil {
			return nil, err
		}
		st.stamps = append(st.stamps, s)
	}
	if len(o.dotenvs) > 0 {
		loaded, err := c.dotenv.apply(o.dotenvs)
		if err != nil {
			return nil, err
		}
		st.dotenvs = loaded
	}

	env, err := resolveEnv(o.Env)
	if err != nil {
		return nil, err
	}
	st.env = env

	if len(o.Defaults) > 0 {
		if err := b.layer(confmap.Provider(o.Defaults, "."), nil, func(string) string { return "defaults" }); err != nil {
			return nil, fmt.Errorf("config: Options.Defaults: %w", err)
		}
	}

	for _, base := range configBases(env) {
		for _, dir := range o.dirs {
			var found []string
			for _, ext := range []string{".yml", ".yaml"} {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				p := filepath.Join(dir, base+ext)
				s, err := stampOf(p)
				if err != nil {
					return nil, err
				}
				st.stamps = append(st.stamps, s)
				if !s.exists {
					continue
				}
				if s.dir {
					c.logger().Warn("config: skipping a directory where a config file is expected", "path", p)
					continue
				}
				if err := b.file(p); err != nil {
					return nil, err
				}
				found = append(found, p)
			}
			if len(found) == 2 {
				c.logger().Warn("config: both .yml and .yaml exist; both are merged and .yaml wins", "files", found)
			}
		}
	}

	if p := o.ConfigFile; p != "" {
		s, err := stampOf(p)
		if err != nil {
			return nil, err
		}
		st.stamps = append(st.stamps, s)
		if !s.exists || s.dir {
			return nil, &FileError{Path: p, Err: fmt.Errorf("the file given with --config does not exist: %w", fs.ErrNotExist)}
		}
		if err := b.file(p); err != nil {
			return nil, err
		}
	}

	if o.prefix != "" {
		if err := c.loadEnv(b); err != nil {
			return nil, err
		}
	}

	if len(o.Overrides) > 0 {
		if err := b.layer(confmap.Provider(o.Overrides, "."), nil, func(string) string { return "overrides" }); err != nil {
			return nil, fmt.Errorf("config: Options.Overrides: %w", err)
		}
	}

	if fs := o.Flags; fs != nil {
		keyOf := o.FlagKey
		if keyOf == nil {
			keyOf = flagKey
		}
		names := make(map[string]string)
		p := posflag.ProviderWithFlag(fs, ".", nil, func(f *pflag.Flag) (string, any) {
			key := keyOf(f)
			if key == "" {
				return "", nil
			}
			names[key] = f.Name
			return key, posflag.FlagVal(fs, f)
		})
		if err := b.layer(p, nil, func(key string) string { return "flag --" + names[key] }); err != nil {
			return nil, fmt.Errorf("config: flags: %w", err)
		}
	}
	return st, nil
}

// loadEnv merges PREFIX_* variables. Empty values count as unset. Two
// variables for one key, or one key that is both a value and a section,
// are an error: the result would depend on the environment's order.
func (c *Config) loadEnv(b *builder) error {
	prefix := c.opts.prefix
	vars := make(map[string]string) // key -> variable
	var refused, dup []string
	p := env.Provider(".", env.Opt{
		Prefix: prefix + "_",
		TransformFunc: func(name, value string) (string, any) {
			key, ok := envKey(prefix, name)
			if !ok {
				refused = append(refused, name)
				return "", nil
			}
			if value == "" {
				return "", nil
			}
			if other, seen := vars[key]; seen {
				dup = append(dup, fmt.Sprintf("%s and %s both set %s", other, name, key))
			}
			vars[key] = name
			return key, value
		},
	})
	if err := b.layer(p, nil, func(key string) string { return "env " + vars[key] }); err != nil {
		return fmt.Errorf("config: environment: %w", err)
	}
	if len(refused) > 0 {
		sort.Strings(refused)
		c.logger().Warn("config: ignoring environment variables whose names do not map to a key (use PREFIX_SECTION__KEY)", "env_vars", refused)
	}
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i := 0; i+1 < len(keys); i++ {
		if strings.HasPrefix(keys[i+1], keys[i]+".") {
			dup = append(dup, fmt.Sprintf("%s sets %s but %s makes it a section", vars[keys[i]], keys[i], vars[keys[i+1]]))
		}
	}
	if len(dup) > 0 {
		sort.Strings(dup)
		return fmt.Errorf("config: conflicting environment variables: %s (unset one of each pair)", strings.Join(dup, "; "))
	}
	return nil
}
