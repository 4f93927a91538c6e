package remote

import (
	"context"
	"time"
)

// Retry makes the requests of one watch (long polls or streams, one at a
// time) until ctx, the watch's run context, ends. It is how every
// interpreter keeps a router current across namerd restarts and
// failures: a try that returns nil (a poll answered, a stream that ended
// cleanly) is made again at once; a failed one is recorded for the state
// page, handed to failed with the pause before the next try, and made
// again after that pause, which is jittered and doubles from base up to
// max, and starts afresh whenever namerd answers. A try that fails
// because ctx ended is not a failure: Retry returns.
func Retry(ctx context.Context, base, max time.Duration, try func(Attempt) error, failed func(err error, retryIn time.Duration)) {
	a := Attempt{st: StatusOf(ctx), bo: &Backoff{Base: base, Max: max}}
	for ctx.Err() == nil {
		a.st.Request()
		err := try(a)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			continue
		}
		a.st.Fail(err)
		d := a.bo.Next()
		failed(err, d)
		if !Wait(ctx, d) {
			return
		}
	}
}

// Attempt is what a try of Retry reports namerd's answers through.
type Attempt struct {
	st *Status
	bo *Backoff
}

// Answered records an answer (a poll's reply, a stream's document) on
// the state page and starts the backoff afresh.
func (a Attempt) Answered() {
	a.st.Response()
	a.bo.Reset()
}

// Reached starts the backoff afresh without recording an answer: namerd
// is up, but what it sent could not be used.
func (a Attempt) Reached() { a.bo.Reset() }
