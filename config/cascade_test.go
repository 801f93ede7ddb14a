package config

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// TestCascadePrecedence proves the order of the eight layers. Layer i sets
// every key wN with N >= i to "Li", so wN must come out as "LN": layer N
// beats every layer below it, and nothing above it (which does not set wN)
// disturbs it.
func TestCascadePrecedence(t *testing.T) {
	e := newEnv(t)
	const layers = 8
	yamlFor := func(i int) string {
		var b strings.Builder
		for n := i; n < layers; n++ {
			fmt.Fprintf(&b, "w%d: L%d\n", n, i)
		}
		return b.String()
	}
	mapFor := func(i int) map[string]any {
		m := map[string]any{}
		for n := i; n < layers; n++ {
			m[fmt.Sprintf("w%d", n)] = fmt.Sprintf("L%d", i)
		}
		return m
	}
	o := e.opts()
	o.Env = "production"
	o.Defaults = mapFor(0)                                                      // 0 code
	writeFile(t, filepath.Join(e.work, "defaults.yaml"), yamlFor(1))            // 1
	writeFile(t, filepath.Join(e.work, "settings.yaml"), yamlFor(2))            // 2
	writeFile(t, filepath.Join(e.work, "settings.production.yaml"), yamlFor(3)) // 3
	writeFile(t, filepath.Join(e.work, "settings.staging.yaml"), "w3: WRONG-ENV\nw7: WRONG-ENV\n")
	explicit := filepath.Join(e.root, "explicit.yaml")
	writeFile(t, explicit, yamlFor(4)) // 4
	o.ConfigFile = explicit
	for n := 5; n < layers; n++ { // 5 env
		t.Setenv(fmt.Sprintf("MYAPP_W%d", n), "L5")
	}
	o.Overrides = mapFor(6) // 6
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.String("w7", "", "")
	fs.String("w0", "FLAG-DEFAULT", "an unchanged flag must not win")
	if err := fs.Parse([]string{"--w7=L7"}); err != nil { // 7 changed flags
		t.Fatal(err)
	}
	o.Flags = fs

	c := e.load(t, o)
	for n := 0; n < layers; n++ {
		key := fmt.Sprintf("w%d", n)
		if got, want := mustString(t, c, key), fmt.Sprintf("L%d", n); got != want {
			t.Errorf("%s = %q, want %q (source %s)", key, got, want, c.Source(key))
		}
	}
	if got := c.Source("w5"); got != "env MYAPP_W5" {
		t.Errorf("Source(w5) = %q", got)
	}
	if got := c.Source("w7"); got != "flag --w7" {
		t.Errorf("Source(w7) = %q", got)
	}
	if got := c.AppEnv(); got != "production" {
		t.Errorf("AppEnv = %q", got)
	}
}

// TestDeepMerge proves a layer overrides key by key, not section by section.
func TestDeepMerge(t *testing.T) {
	e := newEnv(t)
	writeFile(t, filepath.Join(e.work, "defaults.yaml"), "db:\n  host: h1\n  port: 1\n  pool:\n    min: 1\n    max: 10\n")
	writeFile(t, filepath.Join(e.work, "settings.yaml"), "db:\n  port: 2\n  pool:\n    max: 20\n")
	t.Setenv("MYAPP_DB__POOL__MIN", "5")
	c := e.load(t, e.opts())
	for key, want := range map[string]int{"db.port": 2, "db.pool.max": 20, "db.pool.min": 5} {
		if got, err := c.Int(key); err != nil || got != want {
			t.Errorf("%s = %d, %v; want %d", key, got, err, want)
		}
	}
	if got := mustString(t, c, "db.host"); got != "h1" {
		t.Errorf("db.host = %q, want h1 kept from defaults.yaml", got)
	}
}

// TestFileSearchOrder proves every search directory is merged, in order
// ./, ./config/, /config/, <user>/<app>/, extra dirs; that .yaml beats .yml
// in one directory; and that the file name order outranks the directory
// order.
func TestFileSearchOrder(t *testing.T) {
	e := newEnv(t)
	extra := filepath.Join(e.root, "extra")
	dirs := []string{e.work, filepath.Join(e.work, "config"), e.sys, filepath.Join(e.user, "myapp"), extra}
	for i, d := range dirs {
		var b strings.Builder
		for n := i; n < len(dirs); n++ {
			fmt.Fprintf(&b, "d%d: D%d\n", n, i)
		}
		writeFile(t, filepath.Join(d, "settings.yaml"), b.String())
	}
	writeFile(t, filepath.Join(e.work, "settings.yml"), "ext: yml\nonly_yml: kept\nd0: FROM-YML\n")
	writeFile(t, filepath.Join(extra, "defaults.yaml"), "base: defaults-in-last-dir\n")
	writeFile(t, filepath.Join(e.work, "settings.yaml"), "base: settings-in-first-dir\next: yaml\nd0: D0\nd1: D0\nd2: D0\nd3: D0\nd4: D0\n")
	o := e.opts()
	o.ExtraDirs = []string{extra}
	c := e.load(t, o)
	for n := range dirs {
		key := fmt.Sprintf("d%d", n)
		if got, want := mustString(t, c, key), fmt.Sprintf("D%d", n); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	if got := mustString(t, c, "ext"); got != "yaml" {
		t.Errorf("ext = %q, want yaml (.yaml beats .yml)", got)
	}
	if got := mustString(t, c, "only_yml"); got != "kept" {
		t.Errorf("only_yml = %q: .yml must be merged too", got)
	}
	if got := mustString(t, c, "base"); got != "settings-in-first-dir" {
		t.Errorf("base = %q: settings.yaml anywhere must beat defaults.yaml anywhere", got)
	}
	if len(c.Files()) != 7 {
		t.Errorf("Files() = %v, want 7 files", c.Files())
	}
	assertContains(t, e.logs.String(), "both .yml and .yaml exist")
}

// TestSearchDirsDisabled proves the system and user directories can be
// switched off, so a real /config never leaks into a run.
func TestSearchDirsDisabled(t *testing.T) {
	e := newEnv(t)
	writeFile(t, filepath.Join(e.sys, "settings.yaml"), "from: system\n")
	writeFile(t, filepath.Join(e.user, "myapp", "settings.yaml"), "from: user\n")
	o := e.opts()
	o.SkipSystemDir, o.SkipUserConfigDir = true, true
	c := e.load(t, o)
	if c.Contains("from") {
		t.Fatalf("from = %v, want no system or user file read", c.cur.Load().k.Get("from"))
	}
	o.SkipSystemDir = false
	c = e.load(t, o)
	if got := mustString(t, c, "from"); got != "system" {
		t.Fatalf("from = %q, want system", got)
	}
}

func TestAppEnvResolution(t *testing.T) {
	cases := []struct {
		name     string
		explicit string
		vars     map[string]string
		want     string
	}{
		{"default", "", nil, "development"},
		{"option wins", "prod", map[string]string{"APP_ENV": "staging"}, "prod"},
		{"APP_ENV first", "", map[string]string{"APP_ENV": "a", "ENVIRONMENT": "b", "ENV": "c"}, "a"},
		{"ENVIRONMENT second", "", map[string]string{"ENVIRONMENT": "b", "ENV": "c"}, "b"},
		{"ENV last", "", map[string]string{"ENV": "c"}, "c"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			for k, v := range tc.vars {
				t.Setenv(k, v)
			}
			writeFile(t, filepath.Join(e.work, "settings."+tc.want+".yaml"), "picked: "+tc.want+"\n")
			o := e.opts()
			o.Env = tc.explicit
			c := e.load(t, o)
			if c.AppEnv() != tc.want || mustString(t, c, "picked") != tc.want {
				t.Fatalf("AppEnv = %q, picked = %q; want %q", c.AppEnv(), mustString(t, c, "picked"), tc.want)
			}
		})
	}
	t.Run("invalid name refused", func(t *testing.T) {
		e := newEnv(t)
		t.Setenv("APP_ENV", "../../etc/passwd")
		_, err := Load(context.Background(), e.opts())
		if err == nil || !strings.Contains(err.Error(), "APP_ENV") {
			t.Fatalf("err = %v, want an error naming APP_ENV", err)
		}
	})
}

func TestExplicitFileMissing(t *testing.T) {
	e := newEnv(t)
	o := e.opts()
	o.ConfigFile = filepath.Join(e.root, "nope.yaml")
	_, err := Load(context.Background(), o)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	assertContains(t, err.Error(), "nope.yaml", "--config")
}

func TestConfigFlagIsExplicitFile(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.root, "from-flag.yaml")
	writeFile(t, p, "via: flag\n")
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.String("config", "", "config file")
	fs.Int("server.port", 80, "")
	fs.String("log-level", "info", "")
	if err := fs.Parse([]string{"--config", p, "--log-level=debug"}); err != nil {
		t.Fatal(err)
	}
	o := e.opts()
	o.Flags = fs
	o.Defaults = map[string]any{"server": map[string]any{"port": 8080}}
	c := e.load(t, o)
	if got := mustString(t, c, "via"); got != "flag" {
		t.Errorf("via = %q", got)
	}
	if c.Contains("config") {
		t.Error("the config flag must not become a key")
	}
	if got := mustString(t, c, "log_level"); got != "debug" {
		t.Errorf("log_level = %q: --log-level must set log_level", got)
	}
	if got, _ := c.Int("server.port"); got != 8080 {
		t.Errorf("server.port = %d: an unchanged flag must not override the defaults", got)
	}
}

func TestDotEnvNeverOverrides(t *testing.T) {
	e := newEnv(t)
	t.Setenv("KEEL_TEST_REAL", "real")
	t.Setenv("MYAPP_OVER", "real")
	unsetEnv(t, "KEEL_TEST_NEW")
	unsetEnv(t, "KEEL_TEST_HOME")
	unsetEnv(t, "MYAPP_FROM_DOTENV")
	unsetEnv(t, "KEEL_TEST_BOTH")
	writeFile(t, filepath.Join(e.work, ".env"), "KEEL_TEST_REAL=fromfile\nKEEL_TEST_NEW=fromfile\nMYAPP_FROM_DOTENV=yes\nMYAPP_OVER=fromfile\n")
	writeFile(t, filepath.Join(e.home, ".env"), "KEEL_TEST_BOTH=home\nKEEL_TEST_HOME=fromhome\n")

	c := e.load(t, e.opts())
	if got := os.Getenv("KEEL_TEST_REAL"); got != "real" {
		t.Errorf("KEEL_TEST_REAL = %q: .env overrode the environment", got)
	}
	if got := os.Getenv("KEEL_TEST_NEW"); got != "fromfile" {
		t.Errorf("KEEL_TEST_NEW = %q, want fromfile", got)
	}
	if _, set := os.LookupEnv("KEEL_TEST_HOME"); set {
		t.Error("~/.env was read without HomeDotEnv")
	}
	if got := mustString(t, c, "from_dotenv"); got != "yes" {
		t.Errorf("from_dotenv = %q: .env variables must reach the env layer", got)
	}
	if got := mustString(t, c, "over"); got != "real" {
		t.Errorf("over = %q, want the real environment", got)
	}

	// A reload sees an edited .env for the variables it set itself, and
	// still never overrides the real environment.
	writeFile(t, filepath.Join(e.work, ".env"), "KEEL_TEST_REAL=edited\nKEEL_TEST_NEW=edited\nMYAPP_FROM_DOTENV=edited\nKEEL_TEST_BOTH=project\n")
	if err := c.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := os.Getenv("KEEL_TEST_NEW"); got != "edited" {
		t.Errorf("after reload KEEL_TEST_NEW = %q, want edited", got)
	}
	if got := os.Getenv("KEEL_TEST_REAL"); got != "real" {
		t.Errorf("after reload KEEL_TEST_REAL = %q", got)
	}
	if got := mustString(t, c, "from_dotenv"); got != "edited" {
		t.Errorf("after reload from_dotenv = %q", got)
	}
	if got := os.Getenv("KEEL_TEST_BOTH"); got != "project" {
		t.Errorf("after reload KEEL_TEST_BOTH = %q, want project", got)
	}

	// ~/.env only with HomeDotEnv, and the project .env wins over it.
	unsetEnv(t, "KEEL_TEST_BOTH")
	o := e.opts()
	o.HomeDotEnv = true
	e.load(t, o)
	if got := os.Getenv("KEEL_TEST_HOME"); got != "fromhome" {
		t.Errorf("KEEL_TEST_HOME = %q with HomeDotEnv", got)
	}
	if got := os.Getenv("KEEL_TEST_BOTH"); got != "project" {
		t.Errorf("KEEL_TEST_BOTH = %q: the project .env must beat ~/.env", got)
	}
}

func TestDotEnvMalformed(t *testing.T) {
	e := newEnv(t)
	writeFile(t, filepath.Join(e.work, ".env"), "GOOD=1\nAPI_TOKEN=\"s3cr3t-unterminated\nOTHER=2\n")
	_, err := Load(context.Background(), e.opts())
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v, want *FileError", err)
	}
	assertContains(t, err.Error(), ".env", "line 2")
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("error leaks the file content: %v", err)
	}

	o := e.opts()
	o.SkipDotEnv = true
	if _, err := Load(context.Background(), o); err != nil {
		t.Fatalf("SkipDotEnv must not read .env: %v", err)
	}
}

func TestYAMLSyntaxErrorNamesFileAndLine(t *testing.T) {
	e := newEnv(t)
	p := filepath.Join(e.work, "settings.yaml")
	writeFile(t, p, "a: 1\nb:\n  c: 2\n   d: 3\n")
	_, err := Load(context.Background(), e.opts())
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != p {
		t.Fatalf("err = %v, want *FileError for %s", err, p)
	}
	assertContains(t, err.Error(), p, "line 4")

	// A document whose top level is not a mapping: the error must not
	// quote the value.
	writeFile(t, p, "hunter2-secret-value\n")
	_, err = Load(context.Background(), e.opts())
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v, want an error that does not quote the document", err)
	}
	assertContains(t, err.Error(), p, "line 1")
}

func TestEmptyFileIsFine(t *testing.T) {
	e := newEnv(t)
	writeFile(t, filepath.Join(e.work, "settings.yaml"), "")
	writeFile(t, filepath.Join(e.work, "defaults.yaml"), "# only a comment\n")
	c := e.load(t, e.opts())
	if len(c.Keys()) != 0 {
		t.Fatalf("Keys = %v", c.Keys())
	}
}
