package config

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"
)

// benchFixture writes five files of 5 sections x 6 keys and sets 50
// environment variables, and returns the Options and the file list.
func benchFixture(b *testing.B) (Options, []string) {
	e := newEnv(b)
	files := []string{
		filepath.Join(e.work, "defaults.yaml"),
		filepath.Join(e.work, "settings.yaml"),
		filepath.Join(e.work, "settings.development.yaml"),
		filepath.Join(e.work, "config", "settings.yaml"),
		filepath.Join(e.root, "explicit.yaml"),
	}
	for i, p := range files {
		var sb strings.Builder
		for s := 0; s < 5; s++ {
			fmt.Fprintf(&sb, "section%d:\n", s)
			for k := 0; k < 5; k++ {
				fmt.Fprintf(&sb, "  key%d: value-%d-%d\n", k, i, k)
			}
			fmt.Fprintf(&sb, "  list: [a, b, c]\n")
		}
		writeFile(b, p, sb.String())
	}
	for i := 0; i < 50; i++ {
		b.Setenv(fmt.Sprintf("MYAPP_SECTION%d__ENV%d", i%5, i), fmt.Sprint(i))
	}
	o := e.opts()
	o.ConfigFile = files[4]
	o.Logger = discardLogger
	return o, files
}

// BenchmarkLoad measures a full cascade load (5 files, 50 environment
// variables, the .env and every search-directory probe) against a bare
// koanf load of the same files and variables in the same run.
func BenchmarkLoad(b *testing.B) {
	o, files := benchFixture(b)
	ctx := context.Background()
	b.Run("keel", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Load(ctx, o); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline_bare_koanf", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k := koanf.New(".")
			for _, p := range files {
				if err := k.Load(file.Provider(p), yaml.Parser()); err != nil {
					b.Fatal(err)
				}
			}
			err := k.Load(env.Provider(".", env.Opt{Prefix: "MYAPP_", TransformFunc: func(k, v string) (string, any) {
				return strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(k, "MYAPP_"), "__", ".")), v
			}}), nil)
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

type benchSection struct {
	Key0 string   `koanf:"key0"`
	Key1 string   `koanf:"key1"`
	Key2 string   `koanf:"key2"`
	Key3 string   `koanf:"key3"`
	Key4 string   `koanf:"key4"`
	List []string `koanf:"list"`
	Env0 int      `koanf:"env0"`
}

// BenchmarkSection measures decoding one section (with unknown-key
// tracking), against koanf's own Unmarshal of it.
func BenchmarkSection(b *testing.B) {
	o, _ := benchFixture(b)
	c, err := Load(context.Background(), o)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("keel", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var s benchSection
			if err := c.Section("section0", &s); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline_koanf_unmarshal", func(b *testing.B) {
		k := c.cur.Load().k
		b.ReportAllocs()
		for b.Loop() {
			var s benchSection
			if err := k.Unmarshal("section0", &s); err != nil {
				b.Fatal(err)
			}
		}
	})
}
