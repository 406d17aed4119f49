package pebble

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"sync"

	pdb "github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamwork-go/streamwork/state"
)

// Env holds what all the Pebble stores of one App instance share, so that
// memory and open files stay bounded however many tasks and stores the
// instance gets: one block cache (which the stores' memtables are charged
// to as well), one file cache, the memtable budget, the filesystem and the
// logger.
//
// An Env is safe for concurrent use: tasks open and close their stores from
// their own goroutines.
type Env struct {
	cfg       envCfg
	cache     *pdb.Cache
	fileCache *pdb.FileCache
	logger    *slog.Logger

	mu struct {
		sync.Mutex
		closed   bool
		reserved uint64            // memtable bytes reserved by open stores
		stores   map[string]*Store // open stores by cleaned directory
	}
}

// NewEnv returns an Env configured by opts over the defaults, or an error
// wrapping ErrConfig when they are out of range or conflict.
func NewEnv(opts ...EnvOpt) (*Env, error) {
	cfg := defaultEnvCfg()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Env{cfg: cfg, logger: cfg.logger}
	if e.logger == nil {
		e.logger = slog.Default()
	}
	e.cache = pdb.NewCache(cfg.blockCacheSize)
	e.fileCache = pdb.NewFileCache(fileCacheShards, cfg.maxOpenFiles)
	e.mu.stores = make(map[string]*Store)
	return e, nil
}

// fileCacheShards shards the shared file cache; few, since its size is
// split between shards.
const fileCacheShards = 8

// Open opens (creating if needed) the store named name in directory dir on
// the Env's filesystem, configured by opts. The store runs without a
// write-ahead log, because the runtime writes every change to the store's
// changelog topic first (see Store.Flush), unless it is Transactional: its
// commits then go to the log (see Store.Commit). dir must not be open in another store of this Env
// (ErrStoreOpen) or another process (Pebble's own lock). Open fails with
// ErrMemTableBudget when the Env's MemTableBudget is used up. It panics with
// state.ErrClosed after Env.Close.
func (e *Env) Open(dir, name string, opts ...StoreOpt) (*Store, error) {
	var cfg storeCfg
	for _, o := range opts {
		o.applyStore(&cfg)
	}
	key := filepath.Clean(dir)
	need := memTablesPerStore * e.cfg.memTableSize

	e.mu.Lock()
	if e.mu.closed {
		e.mu.Unlock()
		panic(state.ErrClosed)
	}
	if _, ok := e.mu.stores[key]; ok {
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: %s (store %q)", ErrStoreOpen, dir, name)
	}
	if b := e.cfg.memTableBudget; b != 0 && e.mu.reserved+need > b {
		n, r := len(e.mu.stores), e.mu.reserved
		e.mu.Unlock()
		return nil, fmt.Errorf("%w: store %q needs %d bytes, %d of %d reserved by %d open stores",
			ErrMemTableBudget, name, need, r, b, n)
	}
	// Reserve the directory and the memory before the slow open, so that
	// concurrent Opens see them.
	s := &Store{name: name, dir: key, env: e, reserved: need}
	e.mu.stores[key] = s
	e.mu.reserved += need
	e.mu.Unlock()

	s.iters.m = make(map[*iterator]struct{})
	s.opts = e.options(s, cfg)
	if err := e.checkMarker(dir, name); err != nil {
		e.release(s)
		return nil, err
	}
	db, err := pdb.Open(dir, s.opts)
	if err != nil {
		e.release(s)
		return nil, openError(name, dir, err)
	}
	s.db = db
	if err := s.checkFormat(cfg.layout); err != nil {
		_ = db.Close()
		e.release(s)
		return nil, err
	}
	if cfg.transactional {
		s.tx.on = true
		s.tx.b = &txnBatch{b: db.NewIndexedBatch()}
	}
	return s, nil
}

// openError explains why Pebble could not open the store in dir. Anything
// but a permission problem means the files are damaged (a table truncated
// or missing, a manifest that does not parse): the error wraps
// state.ErrCorrupt, and the runtime deletes the store and restores it.
func openError(name, dir string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("state/pebble: open store %q in %s: %w", name, dir, err)
	}
	return fmt.Errorf("state/pebble: open store %q in %s: %w: %w", name, dir, state.ErrCorrupt, err)
}

// formatVersion is the on-disk layout of a store: the key space described
// at dataPrefix. Stores written before it (no version record) or by another
// version fail Open with state.ErrIncompatible.
const formatVersion = 1

// formatMeta names the metadata record that holds formatVersion.
const formatMeta = "streamwork.format"

// layoutMeta names the metadata record that holds a store's Layout.
const layoutMeta = "streamwork.layout"

// checkFormat reads the store's format version, writing it into a new, empty
// store, counts the metadata records, and checks the store's layout when
// layout is not empty (see Layout): a store that records another layout,
// or none while it holds data, is of another format.
func (s *Store) checkFormat(layout string) error {
	if err := s.countMeta(); err != nil {
		return err
	}
	v, err := s.getLocked(metaKey(formatMeta), "read the format version")
	if err != nil {
		return err
	}
	if v == nil {
		empty, err := s.isEmpty()
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("state/pebble: store %q in %s: %w: it has no format version (an older layout)", s.name, s.dir, state.ErrIncompatible)
		}
		if err := s.putMetaLocked(formatMeta, []byte{formatVersion}); err != nil {
			return err
		}
	} else if len(v) != 1 || v[0] != formatVersion {
		return fmt.Errorf("state/pebble: store %q in %s: %w: format %x, this engine writes %d", s.name, s.dir, state.ErrIncompatible, v, formatVersion)
	}
	if layout == "" {
		return nil
	}
	got, err := s.getLocked(metaKey(layoutMeta), "read the layout")
	if err != nil {
		return err
	}
	switch {
	case got == nil:
		hasData, err := s.hasData()
		if err != nil {
			return err
		}
		if hasData {
			return fmt.Errorf("state/pebble: store %q in %s: %w: it holds data of no recorded layout, %q is asked for", s.name, s.dir, state.ErrIncompatible, layout)
		}
		return s.putMetaLocked(layoutMeta, []byte(layout))
	case string(got) != layout:
		return fmt.Errorf("state/pebble: store %q in %s: %w: layout %q, %q is asked for", s.name, s.dir, state.ErrIncompatible, got, layout)
	}
	return nil
}

// hasData reports whether the database holds a data record.
func (s *Store) hasData() (bool, error) {
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: []byte{dataPrefix}, UpperBound: []byte{dataPrefix + 1}})
	if err != nil {
		return false, s.wrap("check for data", err)
	}
	any := it.First()
	if err := it.Close(); err != nil {
		return false, s.wrap("check for data", err)
	}
	return any, nil
}

// isEmpty reports whether the database holds no key at all.
func (s *Store) isEmpty() (bool, error) {
	it, err := s.db.NewIter(nil)
	if err != nil {
		return false, s.wrap("check emptiness", err)
	}
	any := it.First()
	if err := it.Close(); err != nil {
		return false, s.wrap("check emptiness", err)
	}
	return !any, nil
}

// options returns the Pebble options of store s, opened with cfg.
func (e *Env) options(s *Store, cfg storeCfg) *pdb.Options {
	logger := e.logger.With("store", s.name)
	o := &pdb.Options{
		Cache:              e.cache,
		FileCache:          e.fileCache,
		MaxOpenFiles:       e.cfg.maxOpenFiles,
		MemTableSize:       e.cfg.memTableSize,
		DisableWAL:         !cfg.transactional,
		FS:                 e.cfg.fs,
		FormatMajorVersion: pdb.FormatNewest,
		Logger:             slogLogger{logger},
		EventListener: &pdb.EventListener{
			BackgroundError: func(err error) {
				logger.Error("pebble background error", "err", err)
			},
			// Pebble's default calls Logger.Fatalf: here the read (or
			// compaction) that found the damage returns an error wrapping
			// state.ErrCorrupt instead, and the runtime restores the
			// store.
			DataCorruption: func(info pdb.DataCorruptionInfo) {
				logger.Error("pebble found on-disk corruption", "path", info.Path, "err", info.Details.Error())
				s.markCorrupt(info.Details)
			},
			FlushBegin: s.flushBegin,
			FlushEnd:   s.flushEnd,
		},
	}
	// A Bloom filter on every level, as Kafka Streams configures RocksDB:
	// most Gets of an aggregation are for keys in at most one table.
	o.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	// Row-oriented blocks, not Pebble v2's columnar ones: Pebble v2.1.7
	// panics ("unreachable", in colblk.PrefixBytesBuilder.Finish) when it
	// flushes a block whose keys are all empty, and the empty key is an
	// ordinary key here (a serde may encode a key as nothing, and an
	// aggregation by a constant key has only that key). Pebble reads both
	// formats, so this can be turned back on once fixed upstream; see
	// TestEmptyKeyOnlyFlush.
	o.Experimental.EnableColumnarBlocks = func() bool { return false }
	return o
}

// release returns the directory and memtable reservation of s.
func (e *Env) release(s *Store) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.stores[s.dir] == s {
		delete(e.mu.stores, s.dir)
		e.mu.reserved -= s.reserved
	}
}

// Destroy deletes the store directory dir and everything in it, on the
// Env's filesystem. The runtime destroys a store that was not closed cleanly
// under exactly-once, then restores it from its changelog. It fails with
// ErrStoreOpen if a store of this Env has dir open.
func (e *Env) Destroy(dir string) error {
	e.mu.Lock()
	_, open := e.mu.stores[filepath.Clean(dir)]
	e.mu.Unlock()
	if open {
		return fmt.Errorf("%w: cannot destroy %s", ErrStoreOpen, dir)
	}
	return Destroy(e.cfg.fs, dir)
}

// Destroy deletes the store directory dir and everything in it on fs
// (vfs.Default if nil). A missing directory is not an error. The store must
// not be open.
func Destroy(fs vfs.FS, dir string) error {
	if fs == nil {
		fs = vfs.Default
	}
	if err := fs.RemoveAll(dir); err != nil {
		return fmt.Errorf("state/pebble: destroy %s: %w", dir, err)
	}
	return nil
}

// EnvMetrics describes an Env's shared resources at one moment.
type EnvMetrics struct {
	// OpenStores is the number of open stores.
	OpenStores int
	// BlockCache has the shared block cache's usage (Size, in bytes, and
	// Count, of blocks) and its Hits and Misses since NewEnv.
	BlockCache pdb.CacheMetrics
	// BlockCacheCapacity is the configured BlockCacheSize.
	BlockCacheCapacity int64
	// MemTableReserved is the memtable memory reserved by open stores, and
	// MemTableBudget its cap (0 for none).
	MemTableReserved, MemTableBudget uint64
}

// Metrics returns the Env's current metrics. It is cheap and safe to call
// at any time, also after Close.
func (e *Env) Metrics() EnvMetrics {
	e.mu.Lock()
	m := EnvMetrics{
		OpenStores:         len(e.mu.stores),
		BlockCacheCapacity: e.cfg.blockCacheSize,
		MemTableReserved:   e.mu.reserved,
		MemTableBudget:     e.cfg.memTableBudget,
	}
	closed := e.mu.closed
	e.mu.Unlock()
	if !closed {
		m.BlockCache = e.cache.Metrics()
	}
	return m
}

// Close releases the Env's references to the shared caches. Stores still
// open keep working and hold their own references, so the caches are freed
// when the last store closes. Open after Close panics with state.ErrClosed.
// Close is idempotent.
func (e *Env) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.mu.closed {
		return nil
	}
	e.mu.closed = true
	e.fileCache.Unref()
	e.cache.Unref()
	return nil
}

// countMeta sets metaRecords to the number of metadata records.
func (s *Store) countMeta() error {
	it, err := s.db.NewIter(&pdb.IterOptions{LowerBound: []byte{metaPrefix}, UpperBound: []byte{metaPrefix + 1}})
	if err != nil {
		return s.wrap("count metadata", err)
	}
	n := int64(0)
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		return s.wrap("count metadata", err)
	}
	s.metaRecords.Store(n)
	return nil
}

// corruptMarker is the file a store leaves in its directory when Pebble
// found a damaged block in it (on a read or a compaction): the damage may
// be where no read will look again for a long time, so the next Open
// refuses the store (state.ErrCorrupt) and the runtime restores it.
const corruptMarker = "STREAMWORK-CORRUPT"

// markCorrupt leaves the corruption marker in s's directory, best effort.
func (s *Store) markCorrupt(cause error) {
	fs := s.env.cfg.fs
	if fs == nil {
		fs = vfs.Default
	}
	f, err := fs.Create(fs.PathJoin(s.dir, corruptMarker), vfs.WriteCategoryUnspecified)
	if err != nil {
		return
	}
	_, _ = f.Write([]byte(cause.Error() + "\n"))
	_ = f.Sync()
	_ = f.Close()
}

// checkMarker fails with state.ErrCorrupt when dir holds the corruption
// marker.
func (e *Env) checkMarker(dir, name string) error {
	fs := e.cfg.fs
	if fs == nil {
		fs = vfs.Default
	}
	if _, err := fs.Stat(fs.PathJoin(dir, corruptMarker)); err == nil {
		return fmt.Errorf("state/pebble: open store %q in %s: %w: a read found a damaged block before", name, dir, state.ErrCorrupt)
	}
	return nil
}
