package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/state"
	"github.com/streamwork-go/streamwork/state/memory"
	"github.com/streamwork-go/streamwork/state/pebble"
)

// stateEnv is where an App keeps its stores: the engine, and for on-disk
// stores the locked application state directory <StateDir>/<application
// id> and the one pebble.Env that all its stores share (one block cache,
// one file cache), so memory stays bounded however many tasks the instance
// runs.
//
// Layout:
//
//	<StateDir>/<application id>/.lock                  lockDir
//	<StateDir>/<application id>/instance-id            exactly-once without InstanceID
//	<StateDir>/<application id>/<task id>/<store>/     a Pebble store (its
//	                                                   checkpoint inside)
//	<StateDir>/<application id>/global/<store>/        a global table's store
//
// It is made by Run before the workers start and closed after they
// stopped. Its methods are safe for concurrent use (workers open and close
// stores on their own goroutines; pebble.Env is concurrency-safe).
type stateEnv struct {
	Engine Engine
	logger *slog.Logger
	// damaged counts the stores found damaged or of another format, and
	// deleted to be restored.
	damaged atomic.Int64
	appDir  string      // "" when nothing is on disk
	Env     *pebble.Env // nil when nothing is on disk
	unlock  func() error
	// txn: tasks' on-disk changelogged stores are opened
	// pebble.Transactional (under exactly-once; see checkpoint.go).
	txn bool
}

// newStateEnv returns the state environment of an App running topo. It
// locks the application state directory when some store of topo lives on
// disk (the Pebble engine and a store not added as in-memory), and makes
// the shared pebble.Env for them; it also locks it, without a pebble.Env,
// under exactly-once without an InstanceID option, for the instance id kept
// there (see instanceID). Otherwise nothing touches StateDir. A directory
// locked by another instance gives an error wrapping engine.ErrStateDirLocked.
func newStateEnv(cfg *Config, topo *engine.Topology, logger *slog.Logger) (*stateEnv, error) {
	e := &stateEnv{Engine: cfg.Engine, logger: logger, txn: cfg.Guarantee == ExactlyOnce}
	onDisk := false
	if cfg.Engine == PebbleEngine {
		for _, s := range topo.Stores {
			if !s.InMemory && topo.StoreSub[s.Name] != nil {
				onDisk = true
			}
		}
		for _, g := range topo.Globals {
			if !g.InMemory {
				onDisk = true
			}
		}
	}
	keepsID := cfg.Guarantee == ExactlyOnce && cfg.InstanceID == ""
	if !onDisk && !keepsID {
		return e, nil
	}
	e.appDir = filepath.Join(cfg.StateDir, cfg.AppID)
	unlock, err := lockDir(e.appDir)
	if err != nil {
		return nil, fmt.Errorf("kstream: state directory of application %q: %w", cfg.AppID, err)
	}
	e.unlock = unlock
	if !onDisk {
		return e, nil
	}
	e.Env, err = pebble.NewEnv(
		pebble.BlockCacheSize(cfg.BlockCacheSize),
		pebble.MemTableSize(uint64(cfg.MemTableSize)),
		pebble.Logger(logger.With("component", "pebble")),
	)
	if err != nil {
		_ = unlock()
		return nil, fmt.Errorf("%w: %v", engine.ErrConfig, err)
	}
	if err := e.sweep(topo); err != nil {
		_ = e.Close()
		return nil, err
	}
	return e, nil
}

// sweep deletes, with an error log line each, the directories under the
// application state directory that topo has no use for: a task directory
// of a sub-topology that holds no on-disk store (the topology changed and
// the sub-topology is gone, or lost its stores), and in a task directory
// (or the global one) a store topo does not put there (renamed, removed,
// moved to another sub-topology). Such state was written by an older or
// different topology; keeping it would only use disk, and a later topology
// that reuses the name would find data that is not its own (each store
// also records its layout, see storeLayout). Other entries are left alone.
func (e *stateEnv) sweep(topo *engine.Topology) error {
	ents, err := os.ReadDir(e.appDir)
	if err != nil {
		return fmt.Errorf("kstream: read the state directory %s: %w", e.appDir, err)
	}
	// The on-disk stores of each sub-topology, and the global ones.
	bySub := map[int]map[string]bool{}
	for name, s := range topo.Stores {
		if sub := topo.StoreSub[name]; sub != nil && !s.InMemory {
			if bySub[sub.ID] == nil {
				bySub[sub.ID] = map[string]bool{}
			}
			bySub[sub.ID][name] = true
		}
	}
	globals := map[string]bool{}
	for _, g := range topo.Globals {
		if !g.InMemory {
			globals[g.Store] = true
		}
	}
	remove := func(dir, msg string, args ...any) error {
		e.logger.Error(msg, append(args, "dir", dir)...)
		e.damaged.Add(1)
		if err := os.RemoveAll(dir); err != nil {
			return fmt.Errorf("kstream: delete %s: %w", dir, err)
		}
		return nil
	}
	for _, ent := range ents {
		if !ent.IsDir() {
			continue
		}
		dir := filepath.Join(e.appDir, ent.Name())
		want := globals
		if ent.Name() != "global" {
			id, ok := parseTaskID(ent.Name())
			if !ok {
				continue
			}
			if want = bySub[id.Subtopology]; want == nil {
				if err := remove(dir, "kstream: state of a task of a sub-topology this topology does not have (left by an older or different topology); deleting it",
					"task", id.String()); err != nil {
					return err
				}
				continue
			}
		}
		stores, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("kstream: read the state directory %s: %w", dir, err)
		}
		for _, sd := range stores {
			if sd.IsDir() && !want[sd.Name()] {
				if err := remove(filepath.Join(dir, sd.Name()), "kstream: state of a store this topology does not have here (left by an older or different topology); deleting it",
					"store", sd.Name(), "task", ent.Name()); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// storeLayout describes what a store of spec holds, recorded in the store
// (pebble.Layout): a store of the same name written by an older or
// different topology as another kind of store is not read as this one,
// but wiped and restored from its changelog. Time and session windows share
// one layout, and the serdes of keys and values are not part of it.
func storeLayout(spec *storeSpec) string {
	switch {
	case spec.Versioned:
		return "versioned key-value"
	case spec.Retention > 0:
		return "windowed"
	case spec.Timestamped:
		return "timestamped key-value"
	}
	return "key-value"
}

// globalLayout is the layout of a global table's store.
const globalLayout = "global key-value"

// instanceIDFile names the file, in the application state directory, that
// keeps the instance id under exactly-once when no InstanceID option names
// it (Kafka Streams keeps its process id there the same way).
const instanceIDFile = "instance-id"

// instanceID returns the instance id kept in the application state
// directory, after making a random one and writing it there (atomically)
// if there is none or the file does not hold a legal id. Transactional ids
// are made of it, so a restarted instance that finds its state directory
// keeps its transactional ids: its first transaction fences the unfinished
// one of its previous run at once, instead of after the transaction
// timeout. The directory is locked, so no other instance reads the same id.
func (e *stateEnv) InstanceID() (string, error) {
	path := filepath.Join(e.appDir, instanceIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if id := strings.TrimSpace(string(b)); id != "" && engine.LegalName.MatchString(id) {
			return id, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("kstream: read the instance id: %w", err)
	}
	id := randomID()
	f, err := os.CreateTemp(e.appDir, instanceIDFile+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("kstream: write the instance id: %w", err)
	}
	_, werr := f.WriteString(id + "\n")
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), path)
	}
	if werr != nil {
		_ = os.Remove(f.Name())
		return "", fmt.Errorf("kstream: write the instance id: %w", werr)
	}
	return id, nil
}

// persistent reports whether spec's task instances live on disk.
func (e *stateEnv) Persistent(spec *storeSpec) bool {
	return e != nil && e.Env != nil && !spec.InMemory
}

// taskDir returns the directory of a task's stores and checkpoint.
func (e *stateEnv) taskDir(id engine.TaskID) string { return filepath.Join(e.appDir, id.String()) }

// Open opens task id's instance of spec on disk and returns it with its
// directory (see openStore for damaged stores): transactional under
// exactly-once when it has a changelog (a store without one writes
// through, as under the other guarantees).
func (e *stateEnv) Open(id engine.TaskID, spec *storeSpec) (state.Store, string, error) {
	taskDir := e.taskDir(id)
	if err := os.MkdirAll(taskDir, 0o755); err != nil {
		return nil, "", fmt.Errorf("kstream: task %s: store %q: %w", id, spec.Name, err)
	}
	// The checkpoint file of the layout before the checkpoints moved into
	// the stores: its stores are of the older format and restored anew.
	_ = os.Remove(filepath.Join(taskDir, ".checkpoint"))
	dir := filepath.Join(taskDir, spec.Name)
	opts := []pebble.StoreOpt{pebble.Layout(storeLayout(spec))}
	if e.txn && spec.Changelog {
		opts = append(opts, pebble.Transactional())
	}
	st, err := e.openStore(dir, spec.Name, opts...)
	if err != nil {
		return nil, "", fmt.Errorf("kstream: task %s: %w", id, err)
	}
	return st, dir, nil
}

// openStore opens the store in dir. A store whose files are damaged
// (state.ErrCorrupt: truncated, missing or garbled) or of another format or
// layout (state.ErrIncompatible) is logged, deleted and opened again empty: it
// has no checkpoint then, so it is restored in full from its changelog.
func (e *stateEnv) openStore(dir, name string, opts ...pebble.StoreOpt) (state.Store, error) {
	st, err := e.Env.Open(dir, name, opts...)
	if err == nil || !(errors.Is(err, state.ErrCorrupt) || errors.Is(err, state.ErrIncompatible)) {
		return st, err
	}
	e.logger.Error("kstream: store cannot be used; deleting it and restoring it from its changelog", "store", name, "dir", dir, "err", err)
	e.damaged.Add(1)
	if derr := e.Env.Destroy(dir); derr != nil {
		return nil, fmt.Errorf("%w (and deleting it failed: %v)", err, derr)
	}
	return e.Env.Open(dir, name, opts...)
}

// destroy deletes a closed on-disk store.
func (e *stateEnv) Destroy(dir string) error { return e.Env.Destroy(dir) }

// openGlobal opens the store of a global table: on disk under
// <app dir>/global, or in memory.
func (e *stateEnv) openGlobal(spec *globalSpec) (state.Store, error) {
	if e.Env == nil || spec.InMemory {
		return memory.New(spec.Store), nil
	}
	dir := filepath.Join(e.appDir, "global")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return e.openStore(filepath.Join(dir, spec.Store), spec.Store, pebble.Layout(globalLayout))
}

// close releases the shared pebble.Env and the directory lock. Call it
// after every store is closed.
func (e *stateEnv) Close() error {
	if e == nil {
		return nil
	}
	var errs []error
	if e.Env != nil {
		errs = append(errs, e.Env.Close())
	}
	if e.unlock != nil {
		errs = append(errs, e.unlock())
	}
	return engine.JoinErrors(errs)
}
