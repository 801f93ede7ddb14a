package file

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrCorruptPosition is a position file whose content is not a byte
// offset. The receiver refuses to start rather than guess: restarting from
// 0 would re-deliver the whole file, and any other guess could skip lines.
var ErrCorruptPosition = errors.New("corrupt position file")

// tmpInfix separates the position file name from the random suffix of the
// temporary files a commit writes before renaming them into place.
const tmpInfix = ".tmp-"

// maxPositionFileBytes bounds what readPosition accepts; a real position
// file is a decimal int64 and a newline.
const maxPositionFileBytes = 64

// readPosition returns the committed offset stored at path, 0 when the
// file does not exist, or an error wrapping ErrCorruptPosition that names
// the file and the fix.
func readPosition(path, dataPath string) (int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read position file %s: %w", path, err)
	}
	defer f.Close()
	content, err := io.ReadAll(io.LimitReader(f, maxPositionFileBytes+1))
	if err != nil {
		return 0, fmt.Errorf("read position file %s: %w", path, err)
	}
	n := len(content)
	s := strings.TrimSpace(string(content))
	off, perr := strconv.ParseInt(s, 10, 64)
	if n > maxPositionFileBytes || perr != nil || off < 0 {
		return 0, fmt.Errorf("%w %s: it holds %q, not a byte offset: write the offset to resume from into it, or delete it to read %s from the start (re-delivering every line)",
			ErrCorruptPosition, path, content, dataPath)
	}
	return off, nil
}

// writePosition stores off at path atomically: it writes a temporary file
// in the same directory, fsyncs it, renames it over path and fsyncs the
// directory, so a crash leaves either the old or the new position, never a
// partial one. synced is called once per fsync.
func writePosition(path string, off int64, synced func()) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+tmpInfix+"*")
	if err != nil {
		return fmt.Errorf("create temporary position file in %s: %w", dir, err)
	}
	tmpName := tmp.Name()
	fail := func(err error) error {
		_ = tmp.Close()
		_ = os.Remove(tmpName)
		return err
	}
	if _, err := tmp.Write(strconv.AppendInt(nil, off, 10)); err != nil {
		return fail(fmt.Errorf("write %s: %w", tmpName, err))
	}
	if _, err := tmp.Write([]byte{'\n'}); err != nil {
		return fail(fmt.Errorf("write %s: %w", tmpName, err))
	}
	if err := tmp.Sync(); err != nil {
		return fail(fmt.Errorf("fsync %s: %w", tmpName, err))
	}
	synced()
	if err := tmp.Close(); err != nil {
		_ = os.Remove(tmpName)
		return fmt.Errorf("close %s: %w", tmpName, err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		_ = os.Remove(tmpName)
		return fmt.Errorf("rename %s over %s: %w", tmpName, path, err)
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	synced()
	return nil
}

// syncDir fsyncs a directory so that a rename or a file creation in it
// survives a machine crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s to fsync it: %w", dir, err)
	}
	err = d.Sync()
	cerr := d.Close()
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	if cerr != nil {
		return fmt.Errorf("close directory %s: %w", dir, cerr)
	}
	return nil
}

// removeStaleTemps deletes temporary position files that a crash during a
// commit left behind. They never hold the position: only the rename makes
// a temporary file the position file.
func removeStaleTemps(path string) ([]string, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s for stale position files: %w", dir, err)
	}
	var removed []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), base+tmpInfix) {
			p := filepath.Join(dir, e.Name())
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return removed, fmt.Errorf("remove stale position file %s: %w", p, err)
			}
			removed = append(removed, p)
		}
	}
	return removed, nil
}
