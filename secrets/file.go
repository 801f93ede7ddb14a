package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
)

// FileProvider reads secrets from files, such as the files of a Kubernetes
// secret volume or a Docker secret. The version of a file is its
// modification time, so a secret volume update (a symlink swap) raises a
// rotation event.
type FileProvider struct {
	maxBytes    int64
	keepNewline bool
}

// NewFileProvider returns the file provider for cfg.
func NewFileProvider(cfg FileConfig) *FileProvider {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultFileMaxBytes
	}
	return &FileProvider{maxBytes: cfg.MaxBytes, keepNewline: cfg.KeepTrailingNewline}
}

// Name returns "file".
func (p *FileProvider) Name() string { return ProviderFile }

// Fetch reads the file at path; with a key, the file must hold a JSON object
// and the value of key is returned.
func (p *FileProvider) Fetch(_ context.Context, path, key string) (Fetched, error) {
	f, err := os.Open(path)
	if err != nil {
		return Fetched{}, classifyFileErr(path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Fetched{}, classifyFileErr(path, err)
	}
	if st.IsDir() {
		return Fetched{}, fmt.Errorf("%w: %s is a directory, not a secret file", ErrInvalidData, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, p.maxBytes+1))
	if err != nil {
		return Fetched{}, classifyFileErr(path, err)
	}
	if int64(len(data)) > p.maxBytes {
		return Fetched{}, fmt.Errorf("%w: %s is larger than %d bytes (secrets.file.max_bytes)", ErrInvalidData, path, p.maxBytes)
	}
	if !p.keepNewline {
		data = trimNewline(data)
	}
	if key != "" {
		if data, err = ExtractJSONKey(data, key); err != nil {
			return Fetched{}, fmt.Errorf("file %s: %w", path, err)
		}
	}
	return Fetched{Data: data, Version: strconv.FormatInt(st.ModTime().UnixNano(), 10)}, nil
}

// Health always succeeds: there is no backend to reach.
func (p *FileProvider) Health(context.Context) error { return nil }

func classifyFileErr(path string, err error) error {
	// *fs.PathError names the path and the operation; it never holds
	// file content.
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: file %s does not exist", ErrNotFound, path)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%w: %v", ErrAuth, err)
	default:
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
}

func trimNewline(b []byte) []byte {
	if bytes.HasSuffix(b, []byte("\r\n")) {
		return b[:len(b)-2]
	}
	if bytes.HasSuffix(b, []byte("\n")) {
		return b[:len(b)-1]
	}
	return b
}

// EnvProvider reads secrets from environment variables. An unset variable
// is ErrNotFound; an empty one is an empty secret.
type EnvProvider struct {
	lookup lookupEnvFunc
}

// NewEnvProvider returns the env provider; lookup nil means os.LookupEnv.
func NewEnvProvider(lookup func(string) (string, bool)) *EnvProvider {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &EnvProvider{lookup: lookup}
}

// Name returns "env".
func (p *EnvProvider) Name() string { return ProviderEnv }

// Fetch returns the variable named path; with a key, the variable must hold
// a JSON object and the value of key is returned.
func (p *EnvProvider) Fetch(_ context.Context, path, key string) (Fetched, error) {
	v, ok := p.lookup(path)
	if !ok {
		return Fetched{}, fmt.Errorf("%w: environment variable %s is not set", ErrNotFound, path)
	}
	data := []byte(v)
	if key != "" {
		var err error
		if data, err = ExtractJSONKey(data, key); err != nil {
			return Fetched{}, fmt.Errorf("environment variable %s: %w", path, err)
		}
	}
	return Fetched{Data: data}, nil
}

// Health always succeeds.
func (p *EnvProvider) Health(context.Context) error { return nil }
