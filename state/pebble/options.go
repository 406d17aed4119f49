package pebble

import (
	"fmt"
	"log/slog"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Defaults of the Env options.
const (
	// DefaultBlockCacheSize is the default BlockCacheSize: 64 MiB.
	DefaultBlockCacheSize = 64 << 20
	// DefaultMemTableSize is the default MemTableSize: 4 MiB.
	DefaultMemTableSize = 4 << 20
	// DefaultMaxOpenFiles is the default MaxOpenFiles: 1000.
	DefaultMaxOpenFiles = 1000

	minMemTableSize = 64 << 10
	maxMemTableSize = 1 << 30
	// memTablesPerStore is how many memtables of MemTableSize a store can
	// hold at once: Pebble's default MemTableStopWritesThreshold, which
	// stops writes while one full memtable is flushing and another fills.
	memTablesPerStore = 2
	// minOpenFiles is the least file cache Pebble accepts per DB.
	minOpenFiles = 64
)

// EnvOpt configures an Env. Options are applied in order over the defaults,
// then checked together by NewEnv.
type EnvOpt interface{ apply(*envCfg) }

type envOptFunc func(*envCfg)

func (f envOptFunc) apply(c *envCfg) { f(c) }

type envCfg struct {
	blockCacheSize int64
	memTableSize   uint64
	memTableBudget uint64
	maxOpenFiles   int
	fs             vfs.FS
	logger         *slog.Logger
}

func defaultEnvCfg() envCfg {
	return envCfg{
		blockCacheSize: DefaultBlockCacheSize,
		memTableSize:   DefaultMemTableSize,
		maxOpenFiles:   DefaultMaxOpenFiles,
		fs:             vfs.Default,
	}
}

func (c *envCfg) validate() error {
	switch {
	case c.blockCacheSize < 0:
		return fmt.Errorf("%w: BlockCacheSize %d is negative", ErrConfig, c.blockCacheSize)
	case c.memTableSize < minMemTableSize || c.memTableSize > maxMemTableSize:
		return fmt.Errorf("%w: MemTableSize %d outside [%d, %d]", ErrConfig, c.memTableSize, minMemTableSize, maxMemTableSize)
	case c.memTableBudget != 0 && c.memTableBudget < memTablesPerStore*c.memTableSize:
		return fmt.Errorf("%w: MemTableBudget %d is less than one store's memtables (2 x MemTableSize %d)",
			ErrConfig, c.memTableBudget, c.memTableSize)
	case c.maxOpenFiles < minOpenFiles:
		return fmt.Errorf("%w: MaxOpenFiles %d is less than %d", ErrConfig, c.maxOpenFiles, minOpenFiles)
	case c.fs == nil:
		return fmt.Errorf("%w: FS is nil", ErrConfig)
	}
	return nil
}

// BlockCacheSize sets the size in bytes of the block cache that all stores
// of the Env share. Pebble also charges each store's memtables to it, so it
// is the Env's memory budget for reads and writes together: memory grows
// past it only when the memtables alone exceed it. 0 disables caching of
// blocks (memtables are then not bounded by it). Default 64 MiB.
//
// Kafka Streams: the shared Cache and WriteBufferManager of a
// RocksDBConfigSetter following its "bounded memory" recipe.
func BlockCacheSize(bytes int64) EnvOpt {
	return envOptFunc(func(c *envCfg) { c.blockCacheSize = bytes })
}

// MemTableSize sets the steady-state size in bytes of one store's memtable,
// between 64 KiB and 1 GiB. A store holds at most two memtables at a time
// (one filling, one flushing); they start at 256 KiB and grow to this size
// only if the store is written to heavily. Default 4 MiB.
//
// Kafka Streams: RocksDB's write_buffer_size (Options.setWriteBufferSize),
// 16 MiB there.
func MemTableSize(bytes uint64) EnvOpt {
	return envOptFunc(func(c *envCfg) { c.memTableSize = bytes })
}

// MemTableBudget caps the memtable memory of all the Env's open stores: each
// open store reserves 2 × MemTableSize, and Open fails with
// ErrMemTableBudget when the reservation does not fit. Size it as
// 2 × MemTableSize × (the most stores an instance will hold, standbys
// included). 0 means no cap: memtables are still charged to the shared
// block cache. Default 0.
//
// Kafka Streams: the WriteBufferManager limit of the "bounded memory"
// RocksDBConfigSetter, with strict limits.
func MemTableBudget(bytes uint64) EnvOpt {
	return envOptFunc(func(c *envCfg) { c.memTableBudget = bytes })
}

// MaxOpenFiles caps the table files kept open by all the Env's stores
// together, through one shared file cache; at least 64. Default 1000.
//
// Kafka Streams: RocksDB's max_open_files (Options.setMaxOpenFiles), which
// is per store there.
func MaxOpenFiles(n int) EnvOpt {
	return envOptFunc(func(c *envCfg) { c.maxOpenFiles = n })
}

// FS sets the filesystem stores live on. Tests pass vfs.NewMem(), or an
// errorfs wrapper to inject faults. Default vfs.Default, the operating
// system's.
//
// Kafka Streams: none.
func FS(fs vfs.FS) EnvOpt {
	return envOptFunc(func(c *envCfg) { c.fs = fs })
}

// Logger sets where Pebble's messages go, with a "store" attribute: its
// informational messages at Debug level, errors at Error. Default
// slog.Default().
//
// Kafka Streams: RocksDB's info log (Options.setInfoLogLevel).
func Logger(l *slog.Logger) EnvOpt {
	return envOptFunc(func(c *envCfg) { c.logger = l })
}
