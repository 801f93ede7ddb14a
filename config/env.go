package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"regexp"
	"strings"

	"github.com/joho/godotenv"
)

// EnvPrefix returns the environment variable prefix for an application
// name: upper-cased, with every character that is not an ASCII letter or
// digit replaced by '_', and without leading or trailing underscores.
// EnvPrefix("my-app") is "MY_APP", so MY_APP_DATABASE__HOST sets
// database.host.
func EnvPrefix(appName string) string {
	b := []byte(strings.ToUpper(appName))
	for i, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return strings.Trim(string(b), "_")
}

// EnvVarName returns the environment variable that sets key under prefix:
// EnvVarName("MYAPP", "database.host") is "MYAPP_DATABASE__HOST". Error
// messages and documentation use it to tell the operator what to set.
func EnvVarName(prefix, key string) string {
	return EnvPrefix(prefix) + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "__"))
}

// envKey maps an environment variable name to a config key for prefix
// (already normalised by EnvPrefix, non-empty). Both PREFIX_SECTION__KEY
// and PREFIX__SECTION__KEY are accepted; "__" nests and a single "_" stays
// part of the key; the key is lower-cased. A variable that merely starts
// with the same letters (MYAPPX_FOO for MYAPP) is not taken. Names with an
// empty segment, a segment that starts or ends with '_', or a character
// outside [A-Za-z0-9_] are refused (ok false).
func envKey(prefix, name string) (string, bool) {
	if prefix == "" || len(name) <= len(prefix)+1 || !strings.HasPrefix(name, prefix) || name[len(prefix)] != '_' {
		return "", false
	}
	rest := name[len(prefix)+1:]
	if rest[0] == '_' {
		rest = rest[1:]
	}
	if rest == "" {
		return "", false
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return "", false
		}
	}
	segs := strings.Split(rest, "__")
	for _, s := range segs {
		if s == "" || s[0] == '_' || s[len(s)-1] == '_' {
			return "", false
		}
	}
	return strings.ToLower(strings.Join(segs, ".")), true
}

// dotenv applies .env files to the process environment. A variable that
// is already set is never overwritten, except one this Config set itself
// from a .env file on an earlier load and that still holds that value: a
// reload then sees an edited .env.
type dotenv struct {
	set map[string]string // variables this Config set, with the value it set
}

// apply reads each existing file in order (earlier files win, like the
// environment over all of them) and returns the files that existed.
func (d *dotenv) apply(paths []string) ([]string, error) {
	if d.set == nil {
		d.set = make(map[string]string)
	}
	var loaded []string
	want := make(map[string]string)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, &FileError{Path: p, Err: err}
		}
		vars, err := parseDotEnv(b)
		if err != nil {
			return nil, &FileError{Path: p, Err: err}
		}
		loaded = append(loaded, p)
		for k, v := range vars {
			if _, dup := want[k]; !dup {
				want[k] = v
			}
		}
	}
	for k, v := range want {
		cur, exists := os.LookupEnv(k)
		mine, wasMine := d.set[k]
		if exists && !(wasMine && cur == mine) {
			continue // set by someone else: the environment wins
		}
		if err := os.Setenv(k, v); err != nil {
			return nil, fmt.Errorf("config: set %s from .env: %w", k, err)
		}
		d.set[k] = v
	}
	for k, mine := range d.set {
		if _, still := want[k]; still {
			continue
		}
		if cur, ok := os.LookupEnv(k); ok && cur == mine {
			_ = os.Unsetenv(k) // removed from .env since we set it
		}
		delete(d.set, k)
	}
	return loaded, nil
}

// maxDotEnvLines bounds the work spent locating a syntax error.
const maxDotEnvLines = 4096

// parseDotEnv parses .env content. The parser's own error text quotes the
// rest of the file (which may hold secrets), so it is replaced by the
// number of the first line that cannot be parsed.
func parseDotEnv(b []byte) (map[string]string, error) {
	vars, err := godotenv.UnmarshalBytes(b)
	if err == nil {
		return vars, nil
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) > maxDotEnvLines {
		return nil, errors.New("malformed .env content (check quoting and variable names)")
	}
	line := 1
	for n := len(lines) - 1; n >= 0; n-- {
		if _, perr := godotenv.UnmarshalBytes(bytes.Join(lines[:n], nil)); perr == nil {
			line = n + 1
			break
		}
	}
	return nil, fmt.Errorf("malformed .env content at line %d (check quoting and variable names)", line)
}

// appEnvVars are consulted, in order, for the application environment when
// Options.Env is empty.
var appEnvVars = []string{"APP_ENV", "ENVIRONMENT", "ENV"}

// DefaultEnv is the application environment when neither Options.Env nor
// APP_ENV, ENVIRONMENT or ENV is set.
const DefaultEnv = "development"

var validEnvName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// resolveEnv returns the application environment name and refuses names
// that could escape the search directories.
func resolveEnv(explicit string) (string, error) {
	name, from := explicit, "Options.Env"
	if name == "" {
		for _, v := range appEnvVars {
			if s := os.Getenv(v); s != "" {
				name, from = s, v
				break
			}
		}
	}
	if name == "" {
		return DefaultEnv, nil
	}
	if !validEnvName.MatchString(name) || strings.Contains(name, "..") {
		return "", fmt.Errorf("config: environment name %q (from %s) is invalid: use letters, digits, '.', '_' or '-'", name, from)
	}
	return name, nil
}
