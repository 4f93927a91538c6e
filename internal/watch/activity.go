package watch

// State is the state of an Activity.
type State uint8

// Activity states.
const (
	Pending State = iota // no answer yet
	Ok                   // Value is valid
	Failed               // Err says why
)

func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Ok:
		return "ok"
	default:
		return "failed"
	}
}

// Activity is a value that may not be known yet, or may have failed.
// It is what a watched lookup produces: Finagle's Activity.State.
type Activity[T any] struct {
	State State
	Value T
	Err   error
}

// OkActivity returns an Ok activity holding v.
func OkActivity[T any](v T) Activity[T] { return Activity[T]{State: Ok, Value: v} }

// FailedActivity returns a Failed activity carrying err.
func FailedActivity[T any](err error) Activity[T] { return Activity[T]{State: Failed, Err: err} }

// PendingActivity returns a Pending activity.
func PendingActivity[T any]() Activity[T] { return Activity[T]{State: Pending} }
