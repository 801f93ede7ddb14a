package config

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestEnvKey(t *testing.T) {
	cases := []struct {
		name string
		key  string
		ok   bool
	}{
		{"MYAPP_DATABASE__HOST", "database.host", true},
		{"MYAPP_LOG_LEVEL", "log_level", true},
		{"MYAPP_A__B__C", "a.b.c", true},
		{"MYAPP__DATABASE__HOST", "database.host", true},
		{"MYAPP__LOG_LEVEL", "log_level", true},
		{"MYAPP_X", "x", true},
		{"MYAPP_cache__Redis__ENABLED", "cache.redis.enabled", true},
		{"MYAPPX_FOO", "", false},
		{"MYAPP", "", false},
		{"MYAPP_", "", false},
		{"MYAPP__", "", false},
		{"MYAPP___X", "", false},
		{"MYAPP_A____B", "", false},
		{"MYAPP_A__", "", false},
		{"MYAPP_A_", "", false},
		{"MYAPP_A__B_", "", false},
		{"MYAPP_A.B", "", false},
		{"MYAPP_A-B", "", false},
		{"OTHER_A", "", false},
		{"myapp_a", "", false},
	}
	for _, tc := range cases {
		key, ok := envKey("MYAPP", tc.name)
		if key != tc.key || ok != tc.ok {
			t.Errorf("envKey(%q) = %q, %v; want %q, %v", tc.name, key, ok, tc.key, tc.ok)
		}
	}
}

func TestEnvPrefixAndVarName(t *testing.T) {
	for in, want := range map[string]string{"myapp": "MYAPP", "my-app": "MY_APP", "my.app v2": "MY_APP_V2", "-x-": "X", "": ""} {
		if got := EnvPrefix(in); got != want {
			t.Errorf("EnvPrefix(%q) = %q, want %q", in, got, want)
		}
	}
	if got := EnvVarName("my-app", "database.pool.max_size"); got != "MY_APP_DATABASE__POOL__MAX_SIZE" {
		t.Errorf("EnvVarName = %q", got)
	}
	key, ok := envKey("MY_APP", EnvVarName("my-app", "database.pool.max_size"))
	if !ok || key != "database.pool.max_size" {
		t.Errorf("round trip = %q, %v", key, ok)
	}
}

func TestEnvLayer(t *testing.T) {
	e := newEnv(t)
	t.Setenv("MYAPP_DATABASE__HOST", "db.example")
	t.Setenv("MYAPP_LOG_LEVEL", "debug")
	t.Setenv("MYAPP_A__B__C", "deep")
	t.Setenv("MYAPP__SECTION__KEY", "double")
	t.Setenv("MYAPPX_FOO", "collision")
	t.Setenv("MYAPP_EMPTY", "")
	t.Setenv("MYAPP_BAD___NAME", "refused")
	c := e.load(t, e.opts())
	for key, want := range map[string]string{
		"database.host": "db.example", "log_level": "debug", "a.b.c": "deep", "section.key": "double",
	} {
		if got := mustString(t, c, key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
	keys := c.Keys()
	for _, k := range keys {
		if strings.Contains(k, "foo") || strings.Contains(k, "empty") || strings.Contains(k, "bad") {
			t.Errorf("unexpected key %q (from MYAPPX_FOO, an empty or a refused variable)", k)
		}
	}
	if !slices.Contains(keys, "a.b.c") {
		t.Errorf("keys %v lack a.b.c", keys)
	}
	assertContains(t, e.logs.String(), "MYAPP_BAD___NAME")

	// The prefix follows EnvPrefix; an explicit prefix is normalised.
	t.Setenv("OTHER_PORT", "1")
	o := e.opts()
	o.EnvPrefix = "other_"
	c = e.load(t, o)
	if n, err := c.Int("port"); err != nil || n != 1 {
		t.Errorf("port = %d, %v with EnvPrefix other_", n, err)
	}
	if c.EnvPrefix() != "OTHER" {
		t.Errorf("EnvPrefix() = %q", c.EnvPrefix())
	}
}

func TestEnvConflicts(t *testing.T) {
	t.Run("both forms for one key", func(t *testing.T) {
		e := newEnv(t)
		t.Setenv("MYAPP_LOG_LEVEL", "a")
		t.Setenv("MYAPP__LOG_LEVEL", "b")
		_, err := Load(context.Background(), e.opts())
		if err == nil {
			t.Fatal("want a conflict error")
		}
		assertContains(t, err.Error(), "MYAPP_LOG_LEVEL", "MYAPP__LOG_LEVEL", "log_level")
	})
	t.Run("value and section", func(t *testing.T) {
		e := newEnv(t)
		t.Setenv("MYAPP_DB", "x")
		t.Setenv("MYAPP_DB__HOST", "y")
		_, err := Load(context.Background(), e.opts())
		if err == nil {
			t.Fatal("want a conflict error")
		}
		assertContains(t, err.Error(), "MYAPP_DB", "MYAPP_DB__HOST")
	})
}

func TestNoPrefixNoEnvLayer(t *testing.T) {
	e := newEnv(t)
	t.Setenv("MYAPP_X", "1")
	o := e.opts()
	o.AppName = ""
	c := e.load(t, o)
	if c.Contains("x") || c.EnvPrefix() != "" {
		t.Fatal("without an app name or prefix the environment layer must be off")
	}
	t.Setenv("APP_NAME", "myapp")
	c = e.load(t, o)
	if !c.Contains("x") {
		t.Fatal("APP_NAME must give the default app name")
	}
}
