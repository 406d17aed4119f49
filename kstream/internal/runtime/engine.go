package runtime

import (
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// Short names for the engine types the runtime drives.
type (
	task        = engine.Task
	node        = engine.Node
	subtopology = engine.Subtopology
	taskEnv     = engine.TaskEnv
	taskStore   = engine.TaskStore
	storeSpec   = engine.StoreSpec
	globalSpec  = engine.GlobalSpec
	metrics     = engine.Counters
	rawRecord   = kgo.Record
)
