package secrets

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// secretVolume is a directory laid out like a Kubernetes secret volume:
// each version of the data in a timestamped directory, "..data" a symlink
// to the current one, and every key a symlink through "..data".
type secretVolume struct {
	t   *testing.T
	dir string
	cur string // the timestamped directory ..data points to
	n   int
}

func newSecretVolume(t *testing.T, files map[string]string) *secretVolume {
	v := &secretVolume{t: t, dir: t.TempDir()}
	v.publish(files, time.Now())
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(v.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

// publish writes files into a new timestamped directory with modification
// time mtime and swaps "..data" to it atomically (a symlink renamed over
// the old one), then removes the previous directory, as the kubelet does.
func (v *secretVolume) publish(files map[string]string, mtime time.Time) {
	v.t.Helper()
	v.n++
	ts := fmt.Sprintf("..2026_01_02_03_04_05.%09d", v.n)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		v.t.Fatal(err)
	}
	for name, content := range files {
		p := writeFile(v.t, filepath.Join(v.dir, ts), name, content)
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			v.t.Fatal(err)
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		v.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		v.t.Fatal(err)
	}
	if v.cur != "" {
		if err := os.RemoveAll(filepath.Join(v.dir, v.cur)); err != nil {
			v.t.Fatal(err)
		}
	}
	v.cur = ts
}

func TestFileProviderFollowsAKubernetesSecretVolumeSwap(t *testing.T) {
	vol := newSecretVolume(t, map[string]string{"password": "v1-Ka1\n", "creds.json": `{"user":"u1"}`})
	pw := filepath.Join(vol.dir, "password")
	p := NewFileProvider(FileConfig{})
	ctx := context.Background()

	before, err := p.Fetch(ctx, pw, "")
	if err != nil {
		t.Fatal(err)
	}
	if string(before.Data) != "v1-Ka1" {
		t.Fatalf("before the swap: %q", before.Data)
	}
	// The kubelet writes the new version later than the old one; a second
	// apart keeps the modification times distinct on any file system.
	vol.publish(map[string]string{"password": "v2-Ka2\n", "creds.json": `{"user":"u2"}`}, time.Now().Add(time.Second))

	after, err := p.Fetch(ctx, pw, "")
	if err != nil {
		t.Fatalf("after the swap (the old directory is gone): %v", err)
	}
	if string(after.Data) != "v2-Ka2" {
		t.Fatalf("after the swap: %q, want the new value", after.Data)
	}
	if after.Version == before.Version {
		t.Fatalf("version %q unchanged by the swap", after.Version)
	}
	user, err := p.Fetch(ctx, filepath.Join(vol.dir, "creds.json"), "user")
	if err != nil || string(user.Data) != "u2" {
		t.Fatalf("JSON key after the swap: %q, %v", user.Data, err)
	}
}

// Through the manager, a refresh after the swap serves the new value and
// raises one rotation event from the old version to the new.
func TestFileSecretVolumeSwapRotates(t *testing.T) {
	vol := newSecretVolume(t, map[string]string{"password": "v1-Kb1"})
	h := newHarness(t, Config{Sources: map[string]SourceConfig{"pw": {Ref: "file:" + filepath.Join(vol.dir, "password")}}})
	h.secret("v1-Kb1", "v2-Kb2")
	ch, cancel := h.m.Subscribe(4)
	defer cancel()
	first := h.get("pw")
	if first.Secret.Expose() != "v1-Kb1" {
		t.Fatalf("before the swap: %q", first.Secret.Expose())
	}

	vol.publish(map[string]string{"password": "v2-Kb2"}, time.Now().Add(time.Second))
	if err := h.m.Refresh(context.Background()); err != nil {
		t.Fatal(h.checkErr(err))
	}
	got := h.get("pw")
	if got.Secret.Expose() != "v2-Kb2" {
		t.Fatalf("after the swap: %q, want the new value", got.Secret.Expose())
	}
	// A second refresh of the same version raises nothing more.
	if err := h.m.Refresh(context.Background()); err != nil {
		t.Fatal(h.checkErr(err))
	}
	cancel()
	var events []RotationEvent
	for ev := range ch {
		events = append(events, ev)
	}
	if len(events) != 1 {
		t.Fatalf("events %+v, want one", events)
	}
	if ev := events[0]; ev.Provider != ProviderFile || ev.OldVersion != first.Version || ev.NewVersion != got.Version || len(ev.Sources) != 1 || ev.Sources[0] != "pw" {
		t.Fatalf("event %+v, want file %s -> %s for pw", ev, first.Version, got.Version)
	}
}
