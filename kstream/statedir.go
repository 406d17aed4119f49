package kstream

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

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
//	<StateDir>/<application id>/.lock                  state.LockDir
//	<StateDir>/<application id>/instance-id            exactly-once without InstanceID
//	<StateDir>/<application id>/<task id>/.checkpoint  the task's checkpoint
//	<StateDir>/<application id>/<task id>/<store>/     a Pebble store
//	<StateDir>/<application id>/global/.checkpoint     global tables
//	<StateDir>/<application id>/global/<store>/
//
// It is made by Run before the workers start and closed after they
// stopped. Its methods are safe for concurrent use (workers open and close
// stores on their own goroutines; pebble.Env is concurrency-safe).
type stateEnv struct {
	engine Engine
	appDir string      // "" when nothing is on disk
	env    *pebble.Env // nil when nothing is on disk
	unlock func() error
	// globalsOnDisk: every global table's store is on disk, so their
	// shared checkpoint can be trusted.
	globalsOnDisk bool
}

// newStateEnv returns the state environment of an App running topo. It
// locks the application state directory when some store of topo lives on
// disk (the Pebble engine and a store not added as in-memory), and makes
// the shared pebble.Env for them; it also locks it, without a pebble.Env,
// under exactly-once without an InstanceID option, for the instance id kept
// there (see instanceID). Otherwise nothing touches StateDir. A directory
// locked by another instance gives an error wrapping state.ErrLocked.
func newStateEnv(cfg *config, topo *Topology, logger *slog.Logger) (*stateEnv, error) {
	e := &stateEnv{engine: cfg.engine}
	onDisk := false
	if cfg.engine == PebbleEngine {
		for _, s := range topo.stores {
			if !s.inMemory && topo.storeSub[s.name] != nil {
				onDisk = true
			}
		}
		e.globalsOnDisk = len(topo.globals) > 0
		for _, g := range topo.globals {
			if g.inMemory {
				e.globalsOnDisk = false
			} else {
				onDisk = true
			}
		}
	}
	keepsID := cfg.guarantee == ExactlyOnce && cfg.instanceID == ""
	if !onDisk && !keepsID {
		return e, nil
	}
	e.appDir = filepath.Join(cfg.stateDir, cfg.appID)
	unlock, err := state.LockDir(e.appDir)
	if err != nil {
		return nil, fmt.Errorf("kstream: state directory of application %q: %w", cfg.appID, err)
	}
	e.unlock = unlock
	if !onDisk {
		return e, nil
	}
	e.env, err = pebble.NewEnv(
		pebble.BlockCacheSize(cfg.blockCacheSize),
		pebble.MemTableSize(uint64(cfg.memTableSize)),
		pebble.Logger(logger.With("component", "pebble")),
	)
	if err != nil {
		_ = unlock()
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return e, nil
}

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
func (e *stateEnv) instanceID() (string, error) {
	path := filepath.Join(e.appDir, instanceIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if id := strings.TrimSpace(string(b)); id != "" && legalName.MatchString(id) {
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
func (e *stateEnv) persistent(spec *storeSpec) bool {
	return e != nil && e.env != nil && !spec.inMemory
}

// taskDir returns the directory of a task's stores and checkpoint.
func (e *stateEnv) taskDir(id TaskID) string { return filepath.Join(e.appDir, id.String()) }

// checkpointPath returns the path of a task's checkpoint file.
func (e *stateEnv) checkpointPath(id TaskID) string {
	return filepath.Join(e.taskDir(id), ".checkpoint")
}

// open opens task id's instance of spec on disk and returns it with its
// directory.
func (e *stateEnv) open(id TaskID, spec *storeSpec) (state.Store, string, error) {
	dir := filepath.Join(e.taskDir(id), spec.name)
	if err := os.MkdirAll(e.taskDir(id), 0o755); err != nil {
		return nil, "", fmt.Errorf("kstream: task %s: store %q: %w", id, spec.name, err)
	}
	st, err := e.env.Open(dir, spec.name)
	if err != nil {
		return nil, "", fmt.Errorf("kstream: task %s: %w", id, err)
	}
	return st, dir, nil
}

// destroy deletes a closed on-disk store.
func (e *stateEnv) destroy(dir string) error { return e.env.Destroy(dir) }

// openGlobal opens the store of a global table: on disk under
// <app dir>/global, or in memory.
func (e *stateEnv) openGlobal(spec *globalSpec) (state.Store, error) {
	if e.env == nil || spec.inMemory {
		return memory.New(spec.store), nil
	}
	dir := filepath.Join(e.appDir, "global")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return e.env.Open(filepath.Join(dir, spec.store), spec.store)
}

// globalCheckpoint returns the path of the global tables' checkpoint, or
// "" when some of them are in memory (then all restore from the start).
func (e *stateEnv) globalCheckpoint() string {
	if e.env == nil || !e.globalsOnDisk {
		return ""
	}
	return globalCheckpointPath(e.appDir)
}

// close releases the shared pebble.Env and the directory lock. Call it
// after every store is closed.
func (e *stateEnv) close() error {
	if e == nil {
		return nil
	}
	var errs []error
	if e.env != nil {
		errs = append(errs, e.env.Close())
	}
	if e.unlock != nil {
		errs = append(errs, e.unlock())
	}
	return joinErrors(errs)
}
