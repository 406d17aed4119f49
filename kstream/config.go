package kstream

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/state/pebble"
)

// Opt configures an App. Options are applied over the defaults in order, then
// checked together by New.
type Opt interface {
	apply(*config)
}

type optFunc func(*config)

func (f optFunc) apply(c *config) { f(c) }

// DeliveryGuarantee selects how input offsets and outputs are committed.
type DeliveryGuarantee int

const (
	// AtLeastOnce (the default) commits input offsets after every output of
	// the records before them was acknowledged by Kafka. A crash may
	// process some records again; none is lost.
	AtLeastOnce DeliveryGuarantee = iota
	// AtMostOnce commits the offsets of fetched records before processing
	// them. A crash may lose records; none is processed twice.
	AtMostOnce
	// ExactlyOnce commits outputs, state changes (changelog records) and
	// input offsets in one Kafka transaction per worker and commit interval
	// (Kafka's exactly-once v2, KIP-447): a crash, a rebalance or a zombie
	// never makes a committed output, or a change to a store, twice or
	// lose one, as seen by read_committed consumers. Each worker's client
	// is a transactional producer with the transactional id
	// "<application id>-<instance id>-<worker index>"; see InstanceID for
	// why the instance id must be stable. The default commit interval is
	// 100ms. Requires Kafka 2.5 or later. (processing.guarantee=exactly_once_v2.)
	ExactlyOnce
)

// String returns "at-least-once", "at-most-once" or "exactly-once".
func (g DeliveryGuarantee) String() string {
	switch g {
	case AtMostOnce:
		return "at-most-once"
	case ExactlyOnce:
		return "exactly-once"
	default:
		return "at-least-once"
	}
}

type config struct {
	appID          string
	brokers        []string
	workers        int
	commitInterval time.Duration
	commitSet      bool
	guarantee      DeliveryGuarantee
	logger         *slog.Logger
	clientOpts     []kgo.Opt
	maxBuffered    int
	onDeser        ErrorHandler
	onProcess      ErrorHandler
	onProduce      ErrorHandler
	instanceID     string

	// State (see statedir.go and cache.go).
	stateDir       string
	engine         Engine
	blockCacheSize int64
	memTableSize   int64
	cacheMaxBytes  int64
}

func defaultConfig() config {
	return config{
		workers:        1,
		commitInterval: 30 * time.Second,
		guarantee:      AtLeastOnce,
		logger:         slog.New(slog.DiscardHandler),
		maxBuffered:    1000,
		onDeser:        LogAndFail,
		onProcess:      LogAndFail,
		onProduce:      LogAndFail,
		stateDir:       filepath.Join(os.TempDir(), "streamwork"),
		engine:         PebbleEngine,
		blockCacheSize: pebble.DefaultBlockCacheSize,
		memTableSize:   pebble.DefaultMemTableSize,
		cacheMaxBytes:  DefaultCacheMaxBytes,
	}
}

var legalName = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

func (c *config) validate() error {
	switch {
	case c.appID == "":
		return fmt.Errorf("%w: ApplicationID is required", ErrConfig)
	case !legalName.MatchString(c.appID) || len(c.appID) > 200:
		return fmt.Errorf("%w: ApplicationID %q may only hold letters, digits, '.', '_' and '-' (at most 200)", ErrConfig, c.appID)
	case len(c.brokers) == 0:
		return fmt.Errorf("%w: Brokers is required", ErrConfig)
	case c.workers < 1 || c.workers > 256:
		return fmt.Errorf("%w: Workers(%d) must be between 1 and 256", ErrConfig, c.workers)
	case c.commitInterval <= 0:
		return fmt.Errorf("%w: CommitInterval(%v) must be positive", ErrConfig, c.commitInterval)
	case c.maxBuffered < 1:
		return fmt.Errorf("%w: BufferedRecordsPerPartition(%d) must be at least 1", ErrConfig, c.maxBuffered)
	case c.guarantee < AtLeastOnce || c.guarantee > ExactlyOnce:
		return fmt.Errorf("%w: unknown guarantee %d", ErrConfig, c.guarantee)
	case c.onDeser == nil || c.onProcess == nil || c.onProduce == nil:
		return fmt.Errorf("%w: error handlers must not be nil", ErrConfig)
	case c.instanceID != "" && !legalName.MatchString(c.instanceID):
		return fmt.Errorf("%w: InstanceID %q may only hold letters, digits, '.', '_' and '-'", ErrConfig, c.instanceID)
	case c.stateDir == "":
		return fmt.Errorf("%w: StateDir must not be empty", ErrConfig)
	case c.engine != PebbleEngine && c.engine != MemoryEngine:
		return fmt.Errorf("%w: unknown store engine %d", ErrConfig, c.engine)
	case c.blockCacheSize < 0:
		return fmt.Errorf("%w: BlockCacheSize(%d) must not be negative", ErrConfig, c.blockCacheSize)
	case c.memTableSize < minMemTableSize || c.memTableSize > maxMemTableSize:
		return fmt.Errorf("%w: MemTableSize(%d) must be between %d and %d", ErrConfig, c.memTableSize, minMemTableSize, maxMemTableSize)
	case c.cacheMaxBytes < 0:
		return fmt.Errorf("%w: CacheMaxBytes(%d) must not be negative", ErrConfig, c.cacheMaxBytes)
	}
	if c.guarantee == ExactlyOnce && !c.commitSet {
		c.commitInterval = 100 * time.Millisecond
	}
	return nil
}

// ApplicationID names the application: it is the consumer group id and the
// prefix of internal topics. Required. (Kafka Streams: application.id.)
func ApplicationID(id string) Opt { return optFunc(func(c *config) { c.appID = id }) }

// Brokers sets the seed brokers, host:port. Required. (bootstrap.servers.)
func Brokers(addrs ...string) Opt {
	return optFunc(func(c *config) { c.brokers = append([]string(nil), addrs...) })
}

// Workers sets how many workers this instance runs, each a group member with
// its own Kafka client and its own tasks. Default 1. (num.stream.threads.)
func Workers(n int) Opt { return optFunc(func(c *config) { c.workers = n }) }

// CommitInterval sets how often processed offsets are committed. Default 30s,
// or 100ms under ExactlyOnce. (commit.interval.ms.)
func CommitInterval(d time.Duration) Opt {
	return optFunc(func(c *config) { c.commitInterval, c.commitSet = d, true })
}

// Guarantee selects the delivery guarantee. Default AtLeastOnce.
// (processing.guarantee.)
func Guarantee(g DeliveryGuarantee) Opt { return optFunc(func(c *config) { c.guarantee = g }) }

// Logger sets the logger. Default: discard.
func Logger(l *slog.Logger) Opt { return optFunc(func(c *config) { c.logger = l }) }

// ClientOpts adds franz-go client options to every client the App makes, for
// TLS, SASL, timeouts and the like. Options that the runtime owns (group,
// topics, balancers, partitioner, transactional id, isolation level, commit
// behaviour) are overridden.
func ClientOpts(opts ...kgo.Opt) Opt {
	return optFunc(func(c *config) { c.clientOpts = append(c.clientOpts, opts...) })
}

// BufferedRecordsPerPartition bounds the records buffered for one input
// partition; a full buffer pauses fetching that partition until it drains.
// Default 1000. (buffered.records.per.partition.)
func BufferedRecordsPerPartition(n int) Opt { return optFunc(func(c *config) { c.maxBuffered = n }) }

// DeserializationErrorHandler decides about records whose key, value or
// timestamp cannot be read. Default LogAndFail.
// (deserialization.exception.handler.)
func DeserializationErrorHandler(h ErrorHandler) Opt {
	return optFunc(func(c *config) { c.onDeser = h })
}

// ProcessingErrorHandler decides about records that fail in a node (an error
// from a Processor, or a panic in user code). Default LogAndFail.
// (processing.exception.handler.)
func ProcessingErrorHandler(h ErrorHandler) Opt {
	return optFunc(func(c *config) { c.onProcess = h })
}

// ProductionErrorHandler decides about results that cannot be serialized or
// written to Kafka. Default LogAndFail. (production.exception.handler.)
func ProductionErrorHandler(h ErrorHandler) Opt {
	return optFunc(func(c *config) { c.onProduce = h })
}

// InstanceID names this instance, stable across its restarts: it appears in
// client ids and logs and, under exactly-once, in the transactional ids
// "<application id>-<instance id>-<worker index>". Two instances running
// at the same time must have different ids (under exactly-once they would
// fence each other); a restart should keep its id, so that its first
// transaction fences its previous run's unfinished one at once.
//
// Default: a random id per App; under ExactlyOnce, a random id kept in the
// file <StateDir>/<application id>/instance-id and reused by every later
// run with the same StateDir (Run creates it, and locks the directory so
// that no other instance uses it meanwhile).
func InstanceID(id string) Opt { return optFunc(func(c *config) { c.instanceID = id }) }

// Engine selects the storage engine of state stores.
type Engine int

const (
	// PebbleEngine (the default) keeps stores on local disk in Pebble
	// databases under StateDir, which share one block cache per App; a
	// restarted instance restores only what its checkpoint lacks.
	PebbleEngine Engine = iota
	// MemoryEngine keeps stores in memory: nothing is written under
	// StateDir, and every store is restored in full from its changelog
	// when its task starts.
	MemoryEngine
)

// String returns "pebble" or "memory".
func (e Engine) String() string {
	if e == MemoryEngine {
		return "memory"
	}
	return "pebble"
}

// DefaultCacheMaxBytes is the default CacheMaxBytes: 10 MiB.
const DefaultCacheMaxBytes = 10 << 20

// Bounds of MemTableSize (those of state/pebble).
const (
	minMemTableSize = 64 << 10
	maxMemTableSize = 1 << 30
)

// StateDir sets the directory under which the App keeps its on-disk
// stores and checkpoints, in <dir>/<application id>/<task id>/<store>. Run
// locks <dir>/<application id>, so a second instance of the same
// application pointed at the same directory fails with an error wrapping
// state.ErrLocked: give every instance on a machine its own StateDir.
// Apps whose topology has no on-disk store do not touch it. Default
// filepath.Join(os.TempDir(), "streamwork"). (Kafka Streams: state.dir.)
func StateDir(dir string) Opt { return optFunc(func(c *config) { c.stateDir = dir }) }

// StoreEngine selects the engine of the topology's stores: PebbleEngine
// (the default) or MemoryEngine. A store added with InMemory uses memory
// whatever this says. (Kafka Streams: default.dsl.store.)
func StoreEngine(e Engine) Opt { return optFunc(func(c *config) { c.engine = e }) }

// BlockCacheSize sets the size in bytes of the block cache that every
// Pebble store of the App shares (their memtables are charged to it too),
// so memory stays bounded however many tasks the instance gets. Default
// 64 MiB. (Kafka Streams: the shared cache of a bounded-memory
// RocksDBConfigSetter.)
func BlockCacheSize(bytes int64) Opt { return optFunc(func(c *config) { c.blockCacheSize = bytes }) }

// MemTableSize sets the size in bytes of one Pebble store's memtable,
// between 64 KiB and 1 GiB. Default 4 MiB. (Kafka Streams: RocksDB's
// write_buffer_size.)
func MemTableSize(bytes int64) Opt { return optFunc(func(c *config) { c.memTableSize = bytes }) }

// CacheMaxBytes sets the memory in bytes of the record caches in front of
// cached stores (aggregations, tables): a cache merges the updates of a key
// between commits, so downstream operators and the changelog see fewer,
// later updates. The budget is split evenly between the App's workers; the
// tasks of a worker share its part, and a cache that pushes its worker over
// it flushes its least recently dirtied keys. 0 turns caching off: every
// update is forwarded at once. Default 10 MiB. (Kafka Streams:
// statestore.cache.max.bytes, split between stream threads the same way.)
func CacheMaxBytes(n int64) Opt { return optFunc(func(c *config) { c.cacheMaxBytes = n }) }
