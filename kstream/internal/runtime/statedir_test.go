package runtime

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// State written by an older or different topology is not used: task
// directories of sub-topologies the topology does not have and store
// directories it does not put there are deleted when the App opens its
// state directory, and a store whose recorded layout differs from the
// store's spec (a key-value store where a windowed one of the same name is
// now) is wiped when it is opened; each with an error log line naming it.
func TestStateOfAnotherTopologyIsNotUsed(t *testing.T) {
	dir := t.TempDir()
	var logs bytes.Buffer
	cfg := DefaultConfig()
	cfg.AppID, cfg.StateDir = "app", dir
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	kv := &engine.StoreSpec{Name: "counts", Changelog: true, Timestamped: true}
	sub1 := &engine.Subtopology{ID: 1}
	topo := &engine.Topology{Stores: map[string]*engine.StoreSpec{"counts": kv}, StoreSub: map[string]*engine.Subtopology{"counts": sub1}}

	// The first topology writes counts in task 1_0.
	e, err := newStateEnv(&cfg, topo, cfg.Logger)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := e.Open(engine.TaskID{Subtopology: 1, Partition: 0}, kv)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	// Left-overs of older topologies: a task of sub-topology 4, a store
	// "old" in task 1_0, an unrelated file.
	appDir := filepath.Join(dir, "app")
	for _, d := range []string{"4_0/counts", "1_0/old"} {
		if err := os.MkdirAll(filepath.Join(appDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(appDir, "notes"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	// The next topology has counts as a window store in sub-topology 1.
	win := &engine.StoreSpec{Name: "counts", Changelog: true, Retention: time.Hour}
	topo2 := &engine.Topology{Stores: map[string]*engine.StoreSpec{"counts": win}, StoreSub: map[string]*engine.Subtopology{"counts": sub1}}
	e, err = newStateEnv(&cfg, topo2, cfg.Logger)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, d := range []string{"4_0", "1_0/old"} {
		if _, err := os.Stat(filepath.Join(appDir, d)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s left by an older topology is still there (%v)", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(appDir, "notes")); err != nil {
		t.Errorf("an unrelated file was deleted: %v", err)
	}
	st, _, err = e.Open(engine.TaskID{Subtopology: 1, Partition: 0}, win)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if v, err := st.Get([]byte("a")); err != nil || v != nil {
		t.Fatalf("the key-value store's data was read as the window store's: %q, %v", v, err)
	}
	for _, want := range []string{
		`msg="kstream: state of a task of a sub-topology this topology does not have (left by an older or different topology); deleting it" task=4_0`,
		`msg="kstream: state of a store this topology does not have here (left by an older or different topology); deleting it" store=old task=1_0`,
		`msg="kstream: store cannot be used; deleting it and restoring it from its changelog" store=counts`,
		`layout \"timestamped key-value\", \"windowed\" is asked for`,
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no log line holds %s; the log:\n%s", want, logs.String())
		}
	}
}
