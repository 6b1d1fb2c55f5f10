package bench

import (
	"errors"
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/analysis"
	"github.com/fledge-dev/fledge/internal/strategy"
)

// decision is how a run ended for one method.
type decision int

const (
	undecided decision = iota
	rolledBack
	promoted
)

// outcome is a method's decision and when it took it, in seconds after the
// canary first received traffic.
type outcome struct {
	d  decision
	at float64
	// held: undecided, held by the progress deadline; gapPass: a step passed
	// during a traffic gap (fledge only).
	held, gapPass bool
}

// method is one way of deciding. The simulator feeds it requests through its
// counters, split by its weight, and calls tick at the end of every slice.
type method interface {
	// weight is the canary's share of requests (0..1) until the next tick.
	weight() float64
	// counters receive the requests of the slice.
	counters() *counters
	// tick is called at time t with slice number i (t = i × slice length); it
	// returns true once the method has decided.
	tick(i int, t float64) bool
	result() outcome
}

// fledgeMethod is the controller's automation: strategy.Begin and
// strategy.Next with the policy, every check interval, on a simulated clock,
// with the counts of the current step since its start, as the controller's
// measureAuto gathers them (the builtin source's windows, the gateway's
// latency buckets) or as the Prometheus source reads them. The step machine,
// the analysis, the deadline, the rounding of finished steps into the status
// and the status' round trip through JSON: all are the shipped code's.
type fledgeMethod struct {
	p      strategy.Policy
	st     fledgev1.AutoStatus
	source string
	// cur counts the current step since its start; at is a snapshot of it
	// one check ago (SourcePrometheus) or at the first check of the step
	// (SourceIncrease).
	cur, prev, first counters
	checks           int // checks in the current step
	out              outcome
	// stepStart is when the current step started, in seconds; stepUps are
	// the times of step-ups and promotion.
	stepStart float64
	stepUps   []float64
}

// benchStart is the simulated clock's origin.
var benchStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newFledge(p strategy.Policy, source string) *fledgeMethod {
	st, _, started := strategy.Begin(p, "canary", nil, benchStart)
	st = stored(strategy.Next(p, st, started, nil, nil, benchStart).State)
	return &fledgeMethod{p: p, st: st, source: source}
}

// stored is st as the controller reads it back from the API server, where
// it goes through JSON: metav1.Time keeps whole seconds, metav1.MicroTime
// microseconds, in UTC; the counts are integers already.
// TestStoredIsTheJSONRoundTrip checks it against encoding/json, which costs
// more than the check itself.
func stored(st fledgev1.AutoStatus) fledgev1.AutoStatus {
	sec := func(t *metav1.Time) {
		if t != nil && !t.IsZero() {
			t.Time = t.UTC().Truncate(time.Second)
		}
	}
	sec(&st.StartedAt)
	sec(&st.StepStartedAt)
	if st.ConcludedAt != nil {
		t := *st.ConcludedAt
		sec(&t)
		st.ConcludedAt = &t
	}
	if st.IncidentSince != nil {
		t := *st.IncidentSince
		sec(&t)
		st.IncidentSince = &t
	}
	if st.MeasuredAt != nil {
		m := metav1.NewMicroTime(st.MeasuredAt.UTC().Truncate(time.Microsecond))
		st.MeasuredAt = &m
	}
	return st
}

func (f *fledgeMethod) weight() float64     { return float64(f.st.Weight) / 100 }
func (f *fledgeMethod) counters() *counters { return &f.cur }
func (f *fledgeMethod) result() outcome     { return f.out }

// window is what the metrics source reports for the current step at this
// check, or an error when it has nothing (increase() needs two samples).
func (f *fledgeMethod) window() (*analysis.Window, error) {
	switch f.source {
	case SourcePrometheus:
		return f.prev.window(1), nil
	case SourceIncrease:
		// increase() over a range of L s with one sample per second inside
		// it: (last − first) × L/(L − 1), the first sample being one second
		// into the range.
		l := float64(f.checks)
		if l < 2 {
			return nil, errNoSamples
		}
		d := f.cur.minus(f.first)
		return d.window(l / (l - 1)), nil
	}
	return f.cur.window(1), nil
}

var errNoSamples = errors.New("no data: fewer than two samples in the range")

func (f *fledgeMethod) tick(_ int, t float64) bool {
	now := benchStart.Add(time.Duration(math.Round(t*1e3)) * time.Millisecond)
	st, measure, _ := strategy.Begin(f.p, "canary", &f.st, now)
	f.checks++
	if f.checks == 1 {
		f.first = f.cur
	}
	var w *analysis.Window
	var err error
	if measure {
		w, err = f.window()
	}
	out := strategy.Next(f.p, st, false, w, err, now)
	f.prev = f.cur
	stepped := out.State.Step != f.st.Step
	f.st = stored(out.State)
	switch {
	case f.st.Result == fledgev1.AutoRolledBack:
		f.out = outcome{d: rolledBack, at: t}
		return true
	case f.st.Result == fledgev1.AutoPromoted:
		f.stepUps = append(f.stepUps, t)
		f.out = outcome{d: promoted, at: t}
		return true
	case stepped:
		f.stepUps = append(f.stepUps, t)
		f.stepStart, f.checks = t, 0
		f.cur, f.prev, f.first = counters{}, counters{}, counters{}
	}
	return false
}

// step is the current step's index and start time in seconds.
func (f *fledgeMethod) step() (int, float64) { return int(f.st.Step), f.stepStart }

// flaggerMethod mimics Flagger's canary analysis (pkg/controller/scheduler.go):
// traffic starts at stepWeight; every interval, first, if the failed checks
// have reached the threshold it rolls back; otherwise it checks the canary's
// metrics over the last interval: the error rate (100 − request-success-rate)
// must be at most maxErrorRate and the p99 latency (histogram_quantile over
// the interval's buckets) at most maxP99; an interval without canary requests
// fails the check ("no values found"). A failed check increments the failed
// checks (never reset during the analysis) and holds the weight; a passed one
// adds stepWeight, or promotes when the weight is already maxWeight.
type flaggerMethod struct {
	every                 int // slices per interval
	threshold             int
	stepWeight, maxWeight float64
	maxErrorRate, maxP99  float64
	w                     float64
	failed                int
	cur                   counters
	out                   outcome
}

func newFlagger(cfg Config, maxP99 float64, slice float64) *flaggerMethod {
	return &flaggerMethod{
		every:        int(math.Round(cfg.FlaggerInterval.Seconds() / slice)),
		threshold:    cfg.FlaggerThreshold,
		stepWeight:   float64(cfg.FlaggerStepWeight) / 100,
		maxWeight:    float64(cfg.FlaggerMaxWeight) / 100,
		maxErrorRate: cfg.flaggerMaxErrorRate(),
		maxP99:       maxP99,
		w:            float64(cfg.FlaggerStepWeight) / 100,
	}
}

func (f *flaggerMethod) weight() float64     { return f.w }
func (f *flaggerMethod) counters() *counters { return &f.cur }
func (f *flaggerMethod) result() outcome     { return f.out }

func (f *flaggerMethod) tick(i int, t float64) bool {
	if i%f.every != 0 {
		return false
	}
	if f.failed >= f.threshold {
		f.out = outcome{d: rolledBack, at: t}
		return true
	}
	n := f.cur.requests[canarySide]
	ok := n > 0 && f.cur.errors[canarySide]/n <= f.maxErrorRate &&
		histogramQuantile(0.99, f.cur.buckets[canarySide][:]) <= f.maxP99
	f.cur = counters{}
	switch {
	case !ok:
		f.failed++
	case f.w < f.maxWeight-1e-9:
		f.w += f.stepWeight
	default:
		f.out = outcome{d: promoted, at: t}
		return true
	}
	return false
}

// fixedMethod is a fixed-horizon test: the canary gets a constant weight until
// the horizon, then a one-sided two-proportion z-test on errors and a
// one-sided Mann-Whitney test on the bucketed latencies, each at alpha/2, decide
// once: roll back if either rejects "canary no worse", promote otherwise.
// Without requests on either side it stays undecided.
type fixedMethod struct {
	horizon int // slices
	w       float64
	z       float64 // one-sided critical value at alpha/2
	cur     counters
	out     outcome
}

func newFixed(cfg Config, slice float64) *fixedMethod {
	a := cfg.policy().Criteria.Alpha / 2
	return &fixedMethod{
		horizon: int(math.Round(cfg.FixedHorizon.Seconds() / slice)),
		w:       float64(cfg.FixedWeight) / 100,
		z:       math.Sqrt2 * math.Erfinv(1-2*a),
	}
}

func (f *fixedMethod) weight() float64     { return f.w }
func (f *fixedMethod) counters() *counters { return &f.cur }
func (f *fixedMethod) result() outcome     { return f.out }

func (f *fixedMethod) tick(i int, t float64) bool {
	if i < f.horizon {
		return false
	}
	c := &f.cur
	if c.requests[canarySide] == 0 || c.requests[stableSide] == 0 {
		f.out = outcome{d: undecided, at: t}
		return true
	}
	if zTwoProportion(c) > f.z || zMannWhitney(c) > f.z {
		f.out = outcome{d: rolledBack, at: t}
	} else {
		f.out = outcome{d: promoted, at: t}
	}
	return true
}

// zTwoProportion is the pooled two-proportion z statistic of canary minus
// stable error rate (0 when nobody failed).
func zTwoProportion(c *counters) float64 {
	nc, ns := c.requests[canarySide], c.requests[stableSide]
	p := (c.errors[canarySide] + c.errors[stableSide]) / (nc + ns)
	se := math.Sqrt(p * (1 - p) * (1/nc + 1/ns))
	if se == 0 {
		return 0
	}
	return (c.errors[canarySide]/nc - c.errors[stableSide]/ns) / se
}

// zMannWhitney is the normal approximation, with the tie correction, of the
// Mann-Whitney U statistic for "canary latencies are larger", computed on the
// bucket counts (requests in one bucket are ties).
func zMannWhitney(c *counters) float64 {
	nc, ns := c.requests[canarySide], c.requests[stableSide]
	n := nc + ns
	var u, below, ties float64
	for k := range nBuckets {
		ck, sk := c.buckets[canarySide][k], c.buckets[stableSide][k]
		u += ck * (below + sk/2)
		below += sk
		t := ck + sk
		ties += t*t*t - t
	}
	v := nc * ns / 12 * ((n + 1) - ties/(n*(n-1)))
	if v <= 0 {
		return 0
	}
	return (u - nc*ns/2) / math.Sqrt(v)
}
