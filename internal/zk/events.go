package zk

import gozk "github.com/go-zookeeper/zk"

// Event is what a Watch delivers, and the event types its owners look
// at, so that packages on this client need not import the ZooKeeper
// library (test/presubmit's quarantine).
type Event = gozk.Event

// Event types.
const (
	EventNodeDeleted = gozk.EventNodeDeleted
	EventNotWatching = gozk.EventNotWatching
)
