package kstream

import (
	"github.com/streamwork-go/streamwork/kstream/internal/engine"
)

// Short names for the engine types the DSL's nodes are written against.
type (
	task                 = engine.Task
	node                 = engine.Node
	nodeInstance         = engine.Instance
	receiver[K, V any]   = engine.Receiver[K, V]
	downstream[K, V any] = engine.Downstream[K, V]
	storeSpec            = engine.StoreSpec
	globalSpec           = engine.GlobalSpec
	internalTopicSpec    = engine.InternalTopicSpec
)

type nodeKind = engine.NodeKind
