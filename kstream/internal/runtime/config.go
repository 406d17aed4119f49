package runtime

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/streamwork-go/streamwork/kstream/internal/commit"
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
	"github.com/streamwork-go/streamwork/state/pebble"
)

// DeliveryGuarantee selects how input offsets and outputs are committed
// (see the commit package).
type DeliveryGuarantee = commit.Guarantee

// The guarantees.
const (
	AtLeastOnce = commit.AtLeastOnce
	AtMostOnce  = commit.AtMostOnce
	ExactlyOnce = commit.ExactlyOnce
)

// ParseDeliveryGuarantee parses a guarantee's name (commit.ParseGuarantee).
func ParseDeliveryGuarantee(s string) (DeliveryGuarantee, error) { return commit.ParseGuarantee(s) }

type Config struct {
	AppID          string
	Brokers        []string
	Workers        int
	CommitInterval time.Duration
	CommitSet      bool
	Guarantee      DeliveryGuarantee
	Logger         *slog.Logger
	ClientOpts     []kgo.Opt
	MaxBuffered    int
	MaxTaskIdle    time.Duration // see engine.TaskEnv.MaxTaskIdle
	OnDeser        engine.ErrorHandler
	OnProcess      engine.ErrorHandler
	OnProduce      engine.ErrorHandler
	InstanceID     string
	// QueryAddr is this instance's advertised query address (host:port),
	// sent to the group in the member user data ("" : none).
	QueryAddr string
	// StaticMembership makes each worker a static group member, with
	// group instance id GroupInstanceID(InstanceID, worker).
	StaticMembership bool
	// RestoreLogInterval is how often a long restore logs its progress
	// (0: every 10 s).
	RestoreLogInterval time.Duration

	// State (see statedir.go and cache.go).
	StateDir       string
	Engine         Engine
	BlockCacheSize int64
	MemTableSize   int64
	CacheMaxBytes  int64

	// Scaling out (see the assign package and standby.go).
	StandbyReplicas       int
	MaxWarmupReplicas     int
	AcceptableRecoveryLag int64
	ProbingInterval       time.Duration

	// Security: TLS and SASL are the typed options; New adds them to
	// ClientOpts, so every client gets them. TLSSet and SASLSet say the
	// option was given (so that nil is an error, not a no-op).
	TLS     *tls.Config
	TLSSet  bool
	SASL    []sasl.Mechanism
	SASLSet bool
}

func DefaultConfig() Config {
	return Config{
		Workers:        1,
		CommitInterval: 30 * time.Second,
		Guarantee:      AtLeastOnce,
		Logger:         slog.New(slog.DiscardHandler),
		MaxBuffered:    1000,
		OnDeser:        engine.LogAndFail,
		OnProcess:      engine.LogAndFail,
		OnProduce:      engine.LogAndFail,
		StateDir:       filepath.Join(os.TempDir(), "streamwork"),
		Engine:         PebbleEngine,
		BlockCacheSize: pebble.DefaultBlockCacheSize,
		MemTableSize:   pebble.DefaultMemTableSize,
		CacheMaxBytes:  DefaultCacheMaxBytes,

		MaxWarmupReplicas:     2,
		AcceptableRecoveryLag: 10000,
		ProbingInterval:       10 * time.Minute,
	}
}

func (c *Config) Validate() error {
	switch {
	case c.AppID == "":
		return fmt.Errorf("%w: ApplicationID is required", engine.ErrConfig)
	case !engine.LegalName.MatchString(c.AppID):
		return fmt.Errorf("%w: ApplicationID %q may only hold the characters Kafka allows in topic names, [a-zA-Z0-9._-]: it is the prefix of the internal topics", engine.ErrConfig, c.AppID)
	case len(c.AppID) > maxTopicLen:
		return fmt.Errorf("%w: ApplicationID %q is %d characters, more than the %d Kafka allows in a topic name: it is the prefix of the internal topics", engine.ErrConfig, c.AppID, len(c.AppID), maxTopicLen)
	case len(c.Brokers) == 0:
		return fmt.Errorf("%w: Brokers is required", engine.ErrConfig)
	case c.Workers < 1 || c.Workers > 256:
		return fmt.Errorf("%w: Workers(%d) must be between 1 and 256", engine.ErrConfig, c.Workers)
	case c.CommitInterval <= 0:
		return fmt.Errorf("%w: CommitInterval(%v) must be positive", engine.ErrConfig, c.CommitInterval)
	case c.MaxBuffered < 1:
		return fmt.Errorf("%w: BufferedRecordsPerPartition(%d) must be at least 1", engine.ErrConfig, c.MaxBuffered)
	case c.MaxTaskIdle < 0 && c.MaxTaskIdle != NoTaskIdle:
		return fmt.Errorf("%w: MaxTaskIdle(%v) must be at least 0, or NoTaskIdle to never wait", engine.ErrConfig, c.MaxTaskIdle)
	case c.Guarantee < AtLeastOnce || c.Guarantee > ExactlyOnce:
		return fmt.Errorf("%w: unknown guarantee %d", engine.ErrConfig, c.Guarantee)
	case c.TLSSet && c.TLS == nil:
		return fmt.Errorf("%w: TLS needs a *tls.Config", engine.ErrConfig)
	case c.SASLSet && (len(c.SASL) == 0 || slices.Contains(c.SASL, nil)):
		return fmt.Errorf("%w: SASL needs at least one mechanism and no nil one", engine.ErrConfig)
	case c.OnDeser == nil || c.OnProcess == nil || c.OnProduce == nil:
		return fmt.Errorf("%w: error handlers must not be nil", engine.ErrConfig)
	case c.InstanceID != "" && !engine.LegalName.MatchString(c.InstanceID):
		return fmt.Errorf("%w: InstanceID %q may only hold letters, digits, '.', '_' and '-'", engine.ErrConfig, c.InstanceID)
	case c.StaticMembership && c.InstanceID == "" && c.Guarantee != ExactlyOnce:
		return fmt.Errorf("%w: StaticMembership needs an InstanceID (stable across restarts)", engine.ErrConfig)
	case c.QueryAddr != "" && !validHostPort(c.QueryAddr):
		return fmt.Errorf("%w: QueryAddr %q must be host:port with a port number", engine.ErrConfig, c.QueryAddr)
	case c.StateDir == "":
		return fmt.Errorf("%w: StateDir must not be empty", engine.ErrConfig)
	case c.Engine != PebbleEngine && c.Engine != MemoryEngine:
		return fmt.Errorf("%w: unknown store engine %d", engine.ErrConfig, c.Engine)
	case c.BlockCacheSize < 0:
		return fmt.Errorf("%w: BlockCacheSize(%d) must not be negative", engine.ErrConfig, c.BlockCacheSize)
	case c.MemTableSize < minMemTableSize || c.MemTableSize > maxMemTableSize:
		return fmt.Errorf("%w: MemTableSize(%d) must be between %d and %d", engine.ErrConfig, c.MemTableSize, minMemTableSize, maxMemTableSize)
	case c.CacheMaxBytes < 0:
		return fmt.Errorf("%w: CacheMaxBytes(%d) must not be negative", engine.ErrConfig, c.CacheMaxBytes)
	case c.StandbyReplicas < 0 || c.StandbyReplicas > maxStandbyReplicas:
		return fmt.Errorf("%w: StandbyReplicas(%d) must be between 0 and %d", engine.ErrConfig, c.StandbyReplicas, maxStandbyReplicas)
	case c.MaxWarmupReplicas < 1:
		return fmt.Errorf("%w: MaxWarmupReplicas(%d) must be at least 1", engine.ErrConfig, c.MaxWarmupReplicas)
	case c.AcceptableRecoveryLag < 0:
		return fmt.Errorf("%w: AcceptableRecoveryLag(%d) must not be negative", engine.ErrConfig, c.AcceptableRecoveryLag)
	case c.ProbingInterval < minProbingInterval:
		return fmt.Errorf("%w: ProbingRebalanceInterval(%v) must be at least %v", engine.ErrConfig, c.ProbingInterval, minProbingInterval)
	}
	if c.Guarantee == ExactlyOnce && !c.CommitSet {
		c.CommitInterval = 100 * time.Millisecond
	}
	return nil
}

// validHostPort reports whether s is host:port with a non-empty host and
// a port number.
func validHostPort(s string) bool {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n > 0 && n < 65536
}

// GroupInstanceID returns the static group instance id of worker idx of
// the instance named instanceID: "<instance id>-<worker>".
func GroupInstanceID(instanceID string, idx int) string {
	return fmt.Sprintf("%s-%d", instanceID, idx)
}

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

// NoTaskIdle, as MaxTaskIdle, makes tasks never wait for an empty input
// partition (Kafka Streams' max.task.idle.ms = -1).
const NoTaskIdle time.Duration = -1

// DefaultCacheMaxBytes is the default CacheMaxBytes: 10 MiB.
const DefaultCacheMaxBytes = 10 << 20

// maxTopicLen is the longest topic name Kafka accepts.
const maxTopicLen = 249

// Bounds of StandbyReplicas and ProbingInterval.
const (
	maxStandbyReplicas = 16
	minProbingInterval = 100 * time.Millisecond
)

// Bounds of MemTableSize (those of state/pebble).
const (
	minMemTableSize = 64 << 10
	maxMemTableSize = 1 << 30
)

// securityOpts returns cfg's ClientOpts with the TLS and SASL options
// added (a new slice: the caller's stays as it was).
func securityOpts(cfg Config) []kgo.Opt {
	opts := slices.Clone(cfg.ClientOpts)
	if cfg.TLS != nil {
		opts = append(opts, kgo.DialTLSConfig(cfg.TLS.Clone()))
	}
	if len(cfg.SASL) > 0 {
		opts = append(opts, kgo.SASL(cfg.SASL...))
	}
	return opts
}
