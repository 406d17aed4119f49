package kstream

import (
	"crypto/tls"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/streamwork-go/streamwork/kstream/internal/runtime"
)

// Opt configures an App. Options are applied over the defaults in order, then
// checked together by New.
type Opt interface {
	apply(*runtime.Config)
}

// DeliveryGuarantee selects how input offsets and outputs are committed:
// AtLeastOnce (the default), AtMostOnce or ExactlyOnce. It parses from and
// prints as "at-least-once", "at-most-once", "exactly-once"
// (ParseDeliveryGuarantee, encoding.TextUnmarshaler, so flag.TextVar works).
type DeliveryGuarantee = runtime.DeliveryGuarantee

const (
	// AtLeastOnce (the default) commits input offsets after every output of
	// the records before them was acknowledged by Kafka. A crash may
	// process some records again; none is lost.
	AtLeastOnce = runtime.AtLeastOnce
	// AtMostOnce commits the offsets of fetched records before processing
	// them. A crash may lose records; none is processed twice.
	AtMostOnce = runtime.AtMostOnce
	// ExactlyOnce commits outputs, state changes (changelog records) and
	// input offsets in one Kafka transaction per worker and commit interval
	// (Kafka's exactly-once v2, KIP-447): a crash, a rebalance or a zombie
	// never makes a committed output, or a change to a store, twice or
	// lose one, as seen by read_committed consumers. Each worker's client
	// is a transactional producer with the transactional id
	// "<application id>-<instance id>-<worker index>"; see InstanceID for
	// why the instance id must be stable. The default commit interval is
	// 100ms. Requires Kafka 2.5 or later. (processing.guarantee=exactly_once_v2.)
	ExactlyOnce = runtime.ExactlyOnce
)

// ParseDeliveryGuarantee parses the names that DeliveryGuarantee.String
// returns ("at-least-once", "at-most-once", "exactly-once"), and Kafka
// Streams' processing.guarantee values ("at_least_once", "exactly_once_v2"),
// case-insensitively. Other input gives an error wrapping ErrConfig.
func ParseDeliveryGuarantee(s string) (DeliveryGuarantee, error) {
	return runtime.ParseDeliveryGuarantee(s)
}

// Engine selects the storage engine of state stores: PebbleEngine (the
// default) or MemoryEngine.
type Engine = runtime.Engine

const (
	// PebbleEngine (the default) keeps stores on local disk in Pebble
	// databases under StateDir, which share one block cache per App; a
	// restarted instance restores only what its stores lack.
	PebbleEngine = runtime.PebbleEngine
	// MemoryEngine keeps stores in memory: nothing is written under
	// StateDir, and every store is restored in full from its changelog
	// when its task starts.
	MemoryEngine = runtime.MemoryEngine
)

// DefaultCacheMaxBytes is the default CacheMaxBytes: 10 MiB.
const DefaultCacheMaxBytes = runtime.DefaultCacheMaxBytes

type optFunc func(*runtime.Config)

func (f optFunc) apply(c *runtime.Config) { f(c) }

// ApplicationID names the application: it is the consumer group id and the
// prefix of internal topics. Required. (Kafka Streams: application.id.)
func ApplicationID(id string) Opt { return optFunc(func(c *runtime.Config) { c.AppID = id }) }

// Brokers sets the seed brokers, host:port. Required. (bootstrap.servers.)
func Brokers(addrs ...string) Opt {
	return optFunc(func(c *runtime.Config) { c.Brokers = append([]string(nil), addrs...) })
}

// Workers sets how many workers this instance runs, each a group member with
// its own Kafka client and its own tasks. Default 1. (num.stream.threads.)
func Workers(n int) Opt { return optFunc(func(c *runtime.Config) { c.Workers = n }) }

// CommitInterval sets how often processed offsets are committed. Default 30s,
// or 100ms under ExactlyOnce. (commit.interval.ms.)
func CommitInterval(d time.Duration) Opt {
	return optFunc(func(c *runtime.Config) { c.CommitInterval, c.CommitSet = d, true })
}

// Guarantee selects the delivery guarantee. Default AtLeastOnce.
// (processing.guarantee.)
func Guarantee(g DeliveryGuarantee) Opt { return optFunc(func(c *runtime.Config) { c.Guarantee = g }) }

// Logger sets the logger. Default: discard.
func Logger(l *slog.Logger) Opt { return optFunc(func(c *runtime.Config) { c.Logger = l }) }

// ClientOpts adds franz-go client options to every client the App makes, for
// TLS, SASL, timeouts and the like. Options that the runtime owns (group,
// topics, balancers, partitioner, transactional id, isolation level, commit
// behaviour) are overridden.
func ClientOpts(opts ...kgo.Opt) Opt {
	return optFunc(func(c *runtime.Config) { c.ClientOpts = append(c.ClientOpts, opts...) })
}

// TLS makes every client the App creates (workers, restore consumers, the
// global tables' updater, admin clients) connect over TLS with a clone of
// cfg: set RootCAs to trust a private CA, Certificates for client
// authentication. The server name defaults to each broker's host. A nil
// cfg is an error; so is combining TLS with a kgo.Dialer in ClientOpts.
// (security.protocol=SSL, or SASL_SSL with SASL.)
func TLS(cfg *tls.Config) Opt {
	return optFunc(func(c *runtime.Config) { c.TLS, c.TLSSet = cfg, true })
}

// SASL makes every client the App creates authenticate with the first of
// mechs that the broker supports, such as
// scram.Auth{User: u, Pass: p}.AsSha512Mechanism() or
// plain.Auth{User: u, Pass: p}.AsMechanism() (franz-go's pkg/sasl). No
// mechanism, or a nil one, is an error. Without TLS the credentials cross
// the network in the clear under PLAIN. (security.protocol=SASL_PLAINTEXT
// or SASL_SSL, sasl.mechanism, sasl.jaas.config.)
func SASL(mechs ...sasl.Mechanism) Opt {
	return optFunc(func(c *runtime.Config) { c.SASL, c.SASLSet = append([]sasl.Mechanism(nil), mechs...), true })
}

// BufferedRecordsPerPartition bounds the records buffered for one input
// partition; a full buffer pauses fetching that partition until it drained
// below half. Default 1000. (buffered.records.per.partition.) While the
// partition's task can process, the worker pauses by not polling, which
// keeps what the client already fetched; a buffer may so hold up to one
// fetch of its partition beyond n. A worker's fetch asks for at most 512 KiB
// of a partition (Kafka's max.partition.fetch.bytes, 1 MiB by default);
// ClientOpts(kgo.FetchMaxPartitionBytes(n)) sets it.
func BufferedRecordsPerPartition(n int) Opt {
	return optFunc(func(c *runtime.Config) { c.MaxBuffered = n })
}

// NoTaskIdle, given to MaxTaskIdle, makes tasks never wait for an empty
// input partition: a task processes whatever it has buffered, which may be
// out of timestamp order across its partitions. (Kafka Streams:
// max.task.idle.ms = -1.)
const NoTaskIdle = runtime.NoTaskIdle

// MaxTaskIdle sets how long a task waits for records on an empty input
// partition before it processes the records it has of its other partitions
// without it. It matters for tasks that read several partitions (a
// sub-topology with several source topics, co-partitioned: merged streams,
// a stream and a table): such a task processes its records in timestamp
// order across its partitions only as far as it has records of all of
// them, so a record of the empty partition that arrives later may be
// older than what it processed meanwhile. Waiting trades latency for
// timestamp order.
//
// With d >= 0, a task with an empty partition waits, without a bound,
// while that partition's lag is unknown (until a fetch or an offset lookup
// tells where it ends) or positive (Kafka has records the task has not
// fetched yet). Once the partition is known to be caught up (the task's
// position reaches its last stable offset, as Kafka last reported it), the
// task waits up to d, wall clock, from when it first found the partition
// empty and caught up, so a partition that has had no records for longer
// than d holds nothing back; then it processes without it ("enforced
// processing": each record so processed is counted in
// Metrics.EnforcedProcessing, and, when d > 0, the partitions given up on
// are logged at debug level). The wait starts again whenever the partition
// drains. With the default, 0, a task does not wait for producers but
// processes what is already in Kafka in timestamp order. NoTaskIdle never
// waits; neither does a task with one input partition. Values below 0
// other than NoTaskIdle are rejected. The test driver (kstreamtest) waits
// too, on its wall clock. (Kafka Streams: max.task.idle.ms, with the same
// meaning.)
func MaxTaskIdle(d time.Duration) Opt {
	return optFunc(func(c *runtime.Config) { c.MaxTaskIdle = d })
}

// DeserializationErrorHandler decides about records whose key, value or
// timestamp cannot be read. Default LogAndFail.
// (deserialization.exception.handler.)
func DeserializationErrorHandler(h ErrorHandler) Opt {
	return optFunc(func(c *runtime.Config) { c.OnDeser = h })
}

// ProcessingErrorHandler decides about records that fail in a node (an error
// from a Processor, or a panic in user code). Default LogAndFail.
// (processing.exception.handler.)
func ProcessingErrorHandler(h ErrorHandler) Opt {
	return optFunc(func(c *runtime.Config) { c.OnProcess = h })
}

// ProductionErrorHandler decides about results that cannot be serialized or
// written to Kafka. Default LogAndFail. (production.exception.handler.)
func ProductionErrorHandler(h ErrorHandler) Opt {
	return optFunc(func(c *runtime.Config) { c.OnProduce = h })
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
func InstanceID(id string) Opt { return optFunc(func(c *runtime.Config) { c.InstanceID = id }) }

// StaticMembership makes every worker of the instance a static member of
// the consumer group (KIP-345), with group instance id
// "<instance id>-<worker index>" (see InstanceID, which it needs to be
// stable across restarts: set it, or use ExactlyOnce, whose default id is
// kept in the state directory). A static member does not leave the group
// when the App stops, and a restarted instance with the same id takes its
// tasks back without a rebalance as long as it rejoins within the group
// session timeout (kgo's default 45 s; ClientOpts(kgo.SessionTimeout(...))
// sets it): a rolling restart moves no task, and each task restores only
// what its checkpoint lacks. The cost: an instance that stops for good
// keeps its tasks unassigned until the session timeout passes. Keep the
// QueryAddr of an instance the same across restarts too: the group's host
// map is not recomputed on a static rejoin. Default false. (Kafka Streams:
// group.instance.id.)
func StaticMembership(on bool) Opt {
	return optFunc(func(c *runtime.Config) { c.StaticMembership = on })
}

// QueryAddr sets this instance's advertised query address, host:port (the
// address its QueryHandler is served at, reachable by the other instances),
// sent to the group with each worker's membership. The group leader tells
// every member which tasks run at which address, so that
// QueryMetadataForKey, StoreHosts and the QueryHandler can route a key to
// the instance that holds it. Default "": the instance is not queryable
// from the others. (Kafka Streams: application.server.)
func QueryAddr(hostport string) Opt {
	return optFunc(func(c *runtime.Config) { c.QueryAddr = hostport })
}

// StateDir sets the directory under which the App keeps its on-disk
// stores and checkpoints, in <dir>/<application id>/<task id>/<store>. Run
// locks <dir>/<application id>, so a second instance of the same
// application pointed at the same directory fails with an error wrapping
// ErrStateDirLocked: give every instance on a machine its own StateDir.
// Apps whose topology has no on-disk store do not touch it. Default
// filepath.Join(os.TempDir(), "streamwork"). (Kafka Streams: state.dir.)
func StateDir(dir string) Opt { return optFunc(func(c *runtime.Config) { c.StateDir = dir }) }

// StoreEngine selects the engine of the topology's stores: PebbleEngine
// (the default) or MemoryEngine. A store added with InMemory uses memory
// whatever this says. (Kafka Streams: default.dsl.store.)
func StoreEngine(e Engine) Opt { return optFunc(func(c *runtime.Config) { c.Engine = e }) }

// BlockCacheSize sets the size in bytes of the block cache that every
// Pebble store of the App shares (their memtables are charged to it too),
// so memory stays bounded however many tasks the instance gets. Default
// 64 MiB. (Kafka Streams: the shared cache of a bounded-memory
// RocksDBConfigSetter.)
func BlockCacheSize(bytes int64) Opt {
	return optFunc(func(c *runtime.Config) { c.BlockCacheSize = bytes })
}

// MemTableSize sets the size in bytes of one Pebble store's memtable,
// between 64 KiB and 1 GiB. Default 4 MiB. (Kafka Streams: RocksDB's
// write_buffer_size.)
func MemTableSize(bytes int64) Opt {
	return optFunc(func(c *runtime.Config) { c.MemTableSize = bytes })
}

// CacheMaxBytes sets the memory in bytes of the record caches in front of
// cached stores (aggregations, tables): a cache merges the updates of a key
// between commits, so downstream operators and the changelog see fewer,
// later updates. The budget is split evenly between the App's workers; the
// tasks of a worker share its part, and a cache that pushes its worker over
// it flushes its least recently dirtied keys. 0 turns caching off: every
// update is forwarded at once. Default 10 MiB. (Kafka Streams:
// statestore.cache.max.bytes, split between stream threads the same way.)
func CacheMaxBytes(n int64) Opt { return optFunc(func(c *runtime.Config) { c.CacheMaxBytes = n }) }

// StandbyReplicas sets how many standby replicas each stateful task has:
// copies of its changelogged stores on other instances, kept up to date by
// reading the changelogs continuously (never processing input), so that
// when the task's instance fails, an instance that holds a standby takes it
// over after restoring only what its standby missed. Replicas of a task go
// to distinct instances, never the active's; with fewer instances, fewer
// replicas. Standbys cost a changelog consumer's reads and the stores' disk
// on each replica; they help the Pebble engine (an in-memory standby's
// stores are restored in full when it becomes active). Default 0, at most
// 16. (Kafka Streams: num.standby.replicas.)
func StandbyReplicas(n int) Opt { return optFunc(func(c *runtime.Config) { c.StandbyReplicas = n }) }

// MaxWarmupReplicas bounds the warm-up replicas across the group: when a
// rebalance would move a stateful task to an instance whose state lags by
// more than AcceptableRecoveryLag (an instance that just started), the task
// stays active where it is and the new instance first gets it as a warm-up
// replica (a standby beyond StandbyReplicas); it moves at a probing
// rebalance once the warm-up caught up. More warm-ups move state faster
// and cost more reads at once. Default 2, at least 1. (Kafka Streams:
// max.warmup.replicas.)
func MaxWarmupReplicas(n int) Opt {
	return optFunc(func(c *runtime.Config) { c.MaxWarmupReplicas = n })
}

// AcceptableRecoveryLag sets the changelog records an instance's state of
// a task may lag behind its changelogs and still count as caught up: the
// assignor gives a stateful task as active only to a caught-up instance
// while one exists, so the task never stops for longer than restoring that
// many records takes. Default 10,000, not negative. (Kafka Streams:
// acceptable.recovery.lag.)
func AcceptableRecoveryLag(records int64) Opt {
	return optFunc(func(c *runtime.Config) { c.AcceptableRecoveryLag = records })
}

// ProbingRebalanceInterval sets how long after an assignment with warm-up
// replicas the members rebalance again, to move the tasks whose warm-ups
// caught up. Default 10 minutes, at least 100ms. (Kafka Streams:
// probing.rebalance.interval.ms.)
func ProbingRebalanceInterval(d time.Duration) Opt {
	return optFunc(func(c *runtime.Config) { c.ProbingInterval = d })
}
