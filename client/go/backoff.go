package tributary

import (
	"math/rand/v2"
	"time"
)

// expBackoff gives delays that double from initial up to maximum, the
// policy of the Rust SDK and the services (100 ms doubling to 5 s,
// jittered). Each delay is drawn uniformly from the upper half of its step
// ("equal jitter"), so clients that failed together do not reconnect
// together, and no delay is shorter than half its step.
type expBackoff struct {
	initial, maximum, step time.Duration
	random                 func() float64
}

func newBackoff(initial, maximum time.Duration) *expBackoff {
	return &expBackoff{initial: initial, maximum: maximum, step: initial, random: rand.Float64}
}

// next is the next delay.
func (b *expBackoff) next() time.Duration {
	step := b.step
	b.step = min(b.step*2, b.maximum)
	return step/2 + time.Duration(b.random()*float64(step/2))
}

// reset starts again from the initial delay (after progress).
func (b *expBackoff) reset() { b.step = b.initial }
