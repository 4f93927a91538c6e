package middleware

import (
	"fmt"
	"sync"
	"time"

	"github.com/linnet-mesh/linnet/internal/clock"
)

// BudgetOptions maps 1:1 to Linkerd's retries.budget (and
// client.requeueBudget). Nil fields take Linkerd's defaults; zero is a
// meaningful value for both rates.
type BudgetOptions struct {
	// TTLSecs is how long a deposit (one per request) stays usable (10).
	TTLSecs *int `yaml:"ttlSecs"`
	// MinRetriesPerSec is a floor of retries allowed regardless of traffic
	// (10).
	MinRetriesPerSec *int `yaml:"minRetriesPerSec"`
	// PercentCanRetry is the ratio of retries to requests allowed on top of
	// the floor (0.2; 0–1000).
	PercentCanRetry *float64 `yaml:"percentCanRetry"`
}

// Budget defaults, as in Linkerd 1.
const (
	DefaultBudgetTTLSecs          = 10
	DefaultBudgetMinRetriesPerSec = 10
	DefaultBudgetPercentCanRetry  = 0.2
)

// Validate reports the first invalid field.
func (o BudgetOptions) Validate() error {
	if o.TTLSecs != nil && (*o.TTLSecs < 1 || *o.TTLSecs > 60) {
		return fmt.Errorf("budget.ttlSecs: must be in [1, 60], got %d", *o.TTLSecs)
	}
	if o.MinRetriesPerSec != nil && *o.MinRetriesPerSec < 0 {
		return fmt.Errorf("budget.minRetriesPerSec: must be >= 0, got %d", *o.MinRetriesPerSec)
	}
	if o.PercentCanRetry != nil && (*o.PercentCanRetry < 0 || *o.PercentCanRetry > 1000) {
		return fmt.Errorf("budget.percentCanRetry: must be in [0, 1000], got %g", *o.PercentCanRetry)
	}
	return nil
}

// Budget is Finagle's RetryBudget: every request deposits one token, a
// retry withdraws 1/percentCanRetry of them, deposits and withdrawals
// expire after ttl, and a reserve of minRetriesPerSec*ttl retries is always
// there. Safe for concurrent use.
type Budget struct {
	deposit    int64 // credit of one request
	withdrawal int64 // cost of one retry
	reserve    int64

	mu    sync.Mutex
	slot  time.Duration
	slots [budgetSlots]int64
	epoch [budgetSlots]int64 // slot number each entry belongs to
	now   func() int64       // clock.Mono, replaced in tests
}

const (
	budgetSlots   = 10
	depositAmount = 1000 // fixed point: one request deposits 1000 units (Finagle's scale)
)

// NewBudget validates o and returns a budget.
func NewBudget(o BudgetOptions) (*Budget, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	ttl, minPerSec, pct := DefaultBudgetTTLSecs, DefaultBudgetMinRetriesPerSec, DefaultBudgetPercentCanRetry
	if o.TTLSecs != nil {
		ttl = *o.TTLSecs
	}
	if o.MinRetriesPerSec != nil {
		minPerSec = *o.MinRetriesPerSec
	}
	if o.PercentCanRetry != nil {
		pct = *o.PercentCanRetry
	}
	b := &Budget{
		slot: time.Duration(ttl) * time.Second / budgetSlots,
		now:  clock.Mono,
	}
	if pct == 0 {
		b.deposit, b.withdrawal = 0, 1 // only the reserve pays for retries
	} else {
		b.deposit, b.withdrawal = depositAmount, max(1, int64(depositAmount/pct))
	}
	b.reserve = int64(minPerSec) * int64(ttl) * b.withdrawal
	return b, nil
}

// add records n units in the current slot; b.mu is held.
func (b *Budget) add(n int64) { b.addAt(b.now(), n) }

// addAt records n units in the slot of now (a clock.Mono reading); b.mu
// is held.
func (b *Budget) addAt(now, n int64) {
	s := now / int64(b.slot)
	i := int(s % budgetSlots)
	if b.epoch[i] != s {
		b.epoch[i], b.slots[i] = s, 0
	}
	b.slots[i] += n
}

// sum is the unexpired balance; b.mu is held.
func (b *Budget) sum() int64 {
	s := b.now() / int64(b.slot)
	t := b.reserve
	for i := range budgetSlots {
		if s-b.epoch[i] < budgetSlots {
			t += b.slots[i]
		}
	}
	return t
}

// Deposit credits one request.
func (b *Budget) Deposit() {
	if b.deposit == 0 {
		return
	}
	b.mu.Lock()
	b.add(b.deposit)
	b.mu.Unlock()
}

// depositAt is Deposit with the caller's clock.Mono reading.
func (b *Budget) depositAt(now int64) {
	if b.deposit == 0 {
		return
	}
	b.mu.Lock()
	b.addAt(now, b.deposit)
	b.mu.Unlock()
}

// TryWithdraw takes the cost of one retry, reporting false (and taking
// nothing) when the budget cannot pay for it.
func (b *Budget) TryWithdraw() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sum() < b.withdrawal {
		return false
	}
	b.add(-b.withdrawal)
	return true
}

// Balance is the number of retries the budget would allow now.
func (b *Budget) Balance() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return max(0, b.sum()/b.withdrawal)
}
