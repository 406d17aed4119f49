package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// Under exactly-once the instance id is kept in the state directory: made
// on the first run, read back by the next ones, replaced when unreadable;
// the directory is locked, so a second instance cannot take the same id.
func TestExactlyOnceInstanceIDKeptInStateDir(t *testing.T) {
	dir := t.TempDir()
	src := &engine.Node{Name: "src", Kind: engine.KindSource, Topics: []string{"in"}}
	topo, err := engine.Build(&engine.Graph{Nodes: []*engine.Node{src}, ByName: map[string]*engine.Node{"src": src}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.AppID, cfg.Guarantee, cfg.StateDir = "app", ExactlyOnce, dir
	open := func() (*stateEnv, string) {
		t.Helper()
		e, err := newStateEnv(&cfg, topo, cfg.Logger)
		if err != nil {
			t.Fatal(err)
		}
		id, err := e.InstanceID()
		if err != nil {
			t.Fatal(err)
		}
		if !engine.LegalName.MatchString(id) {
			t.Fatalf("instance id %q is not a legal name", id)
		}
		return e, id
	}
	e, first := open()
	if _, err := newStateEnv(&cfg, topo, cfg.Logger); !errors.Is(err, engine.ErrStateDirLocked) {
		t.Fatalf("second instance on the same state directory: err = %v, want engine.ErrStateDirLocked", err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	e, again := open()
	if again != first {
		t.Fatalf("second run got instance id %q, want %q", again, first)
	}
	e.Close()
	path := filepath.Join(dir, "app", instanceIDFile)
	if b, err := os.ReadFile(path); err != nil || strings.TrimSpace(string(b)) != first {
		t.Fatalf("%s holds %q (%v), want %q", path, b, err, first)
	}
	if err := os.WriteFile(path, []byte("not a/legal id\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e, fresh := open()
	e.Close()
	if fresh == first {
		t.Fatalf("an unreadable instance-id file was kept")
	}
	// An explicit InstanceID needs no state directory.
	cfg.InstanceID, cfg.StateDir = "given", filepath.Join(dir, "unused")
	e, err = newStateEnv(&cfg, topo, cfg.Logger)
	if err != nil {
		t.Fatal(err)
	}
	e.Close()
	if _, err := os.Stat(cfg.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state directory made without need: %v", err)
	}
}
