package logging

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestParseLevel(t *testing.T) {
	for in, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "DEBUG": slog.LevelDebug, " info ": slog.LevelInfo,
		"warn": slog.LevelWarn, "Warning": slog.LevelWarn, "error": slog.LevelError,
		"debug-4": slog.LevelDebug - 4, "INFO+2": slog.LevelInfo + 2,
	} {
		got, err := ParseLevel(in)
		if err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "verbose", "trace", "info+", "5"} {
		got, err := ParseLevel(in)
		if !errors.Is(err, ErrInvalidLevel) || got != slog.LevelInfo {
			t.Errorf("ParseLevel(%q) = %v, %v; want info and ErrInvalidLevel", in, got, err)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]string{
		"json": FormatJSON, "JSON": FormatJSON, "text": FormatText, "pretty": FormatText,
		"human": FormatText, "console": FormatText, " auto ": FormatAuto,
	} {
		got, err := ParseFormat(in)
		if err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yaml", "jsonl"} {
		got, err := ParseFormat(in)
		if !errors.Is(err, ErrInvalidFormat) || got != FormatAuto {
			t.Errorf("ParseFormat(%q) = %q, %v; want auto and ErrInvalidFormat", in, got, err)
		}
		if errors.Is(err, ErrInvalidLevel) {
			t.Errorf("a bad format reported as a bad level")
		}
	}
}

func TestEnvSetup(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       map[string]string
		opts      Options
		wantLevel slog.Level
		wantJSON  bool
		wantWarn  []string // keys of the warning line; nil = no warning
	}{
		{"defaults", nil, Options{}, slog.LevelInfo, true, nil},
		{"env level and format", map[string]string{EnvLevel: "debug", EnvFormat: "text"}, Options{}, slog.LevelDebug, false, nil},
		{"options override env", map[string]string{EnvLevel: "debug", EnvFormat: "text"},
			Options{Level: slog.LevelError, Format: FormatJSON}, slog.LevelError, true, nil},
		{"bad level falls back to info", map[string]string{EnvLevel: "verbose"}, Options{}, slog.LevelInfo, true, []string{"log_level"}},
		{"bad format falls back to auto", map[string]string{EnvFormat: "yaml"}, Options{}, slog.LevelInfo, true, []string{"log_format"}},
		{"both bad: one warning", map[string]string{EnvLevel: "loud", EnvFormat: "xml"}, Options{}, slog.LevelInfo, true, []string{"log_level", "log_format"}},
		{"bad option format", nil, Options{Format: "fancy"}, slog.LevelInfo, true, []string{"format_option"}},
		{"negative flood numbers", nil, Options{Flood: FloodControl{Rate: -1}}, slog.LevelInfo, true, []string{"flood"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var out fileWriter // a regular file: auto means JSON
			o := tc.opts
			o.Output, o.Metrics = &out, testRegistry()
			h := NewHandler(o)
			for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
				if got, want := h.Enabled(t.Context(), l), l >= tc.wantLevel; got != want {
					t.Errorf("Enabled(%v) = %v, want %v", l, got, want)
				}
			}
			if h.c.json != tc.wantJSON {
				t.Errorf("json = %v, want %v", h.c.json, tc.wantJSON)
			}
			lines := out.Lines()
			if tc.wantWarn == nil {
				if len(lines) != 0 {
					t.Fatalf("unexpected output: %q", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("want one warning line, got %q", lines)
			}
			if !tc.wantJSON {
				t.Fatal("warning checks assume JSON")
			}
			m := oneJSON(t, out.String())
			if m["level"] != "WARN" || !strings.Contains(m["fix"].(string), "LOG_LEVEL must be") {
				t.Errorf("warning line: %v", m)
			}
			for _, k := range tc.wantWarn {
				if _, ok := m[k]; !ok {
					t.Errorf("warning lacks %q: %v", k, m)
				}
			}
		})
	}
}

func TestWarningWrittenEvenAboveLevel(t *testing.T) {
	cleanEnv(t)
	t.Setenv(EnvFormat, "bogus")
	var out fileWriter
	NewHandler(Options{Level: slog.LevelError, Output: &out, Metrics: testRegistry()})
	if m := oneJSON(t, out.String()); m["log_format"] != "bogus" {
		t.Fatalf("warning: %v", m)
	}
}

func TestAutoFormatAndColour(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tty       bool
		noColor   *string
		format    string
		color     *bool
		wantJSON  bool
		wantColor bool
	}{
		{"terminal: coloured text", true, nil, "", nil, false, true},
		{"terminal with NO_COLOR: JSON", true, ptr("1"), "", nil, true, false},
		{"terminal with empty NO_COLOR: JSON", true, ptr(""), "", nil, true, false},
		{"file: JSON", false, nil, "", nil, true, false},
		{"explicit text to a file: no colour", false, nil, FormatText, nil, false, false},
		{"explicit text on a terminal with NO_COLOR: plain", true, ptr("1"), FormatText, nil, false, false},
		{"colour forced", false, nil, FormatText, ptr(true), false, true},
		{"colour forced off", true, nil, FormatAuto, ptr(false), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cleanEnv(t)
			if tc.noColor != nil {
				t.Setenv(EnvNoColor, *tc.noColor)
			}
			var w interface {
				Write([]byte) (int, error)
				String() string
			}
			if tc.tty {
				w = &ttyWriter{}
			} else {
				w = &fileWriter{}
			}
			l := New(Options{Output: w, Format: tc.format, Color: tc.color, Metrics: testRegistry()})
			l.Info("hello", "k", "v")
			out := w.String()
			isJSON := strings.HasPrefix(out, "{")
			hasColor := strings.Contains(out, "\x1b[")
			if isJSON != tc.wantJSON || hasColor != tc.wantColor {
				t.Fatalf("json=%v colour=%v, want json=%v colour=%v: %q", isJSON, hasColor, tc.wantJSON, tc.wantColor, out)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	if err := (Options{}).Validate(); err != nil {
		t.Fatalf("zero Options: %v", err)
	}
	if err := (Options{Format: "pretty", Flood: FloodControl{Rate: 5}}).Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	err := (Options{Format: "fancy", Flood: FloodControl{Burst: -1}}).Validate()
	if !errors.Is(err, ErrInvalidFormat) || !errors.Is(err, ErrInvalidFloodControl) {
		t.Fatalf("Validate = %v, want both errors", err)
	}
	if !strings.Contains(err.Error(), "Format") || !strings.Contains(err.Error(), "Flood.Burst") {
		t.Fatalf("error does not name the fields: %v", err)
	}
}

func TestSetupInstallsDefault(t *testing.T) {
	cleanEnv(t)
	prev := slog.Default()
	t.Cleanup(func() { slog.SetDefault(prev) })
	var out fileWriter
	l := Setup(Options{Output: &out, Metrics: testRegistry()})
	if slog.Default() != l {
		t.Fatal("Setup did not install the logger as the default")
	}
	slog.Info("via default", "password", "p1")
	m := oneJSON(t, out.String())
	if m["msg"] != "via default" || m["password"] != "[REDACTED]" {
		t.Fatalf("default logger output: %v", m)
	}
}
