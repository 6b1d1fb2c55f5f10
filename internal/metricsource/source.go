package metricsource

import (
	"context"
	"errors"
	"time"
)

// Backend names one Service of a published application.
type Backend struct {
	// Namespace and App identify the application (its Release).
	Namespace, App string
	// Service is the backend Service (stable or canary).
	Service string
}

// String names the backend in errors: namespace/app/service.
func (b Backend) String() string { return b.Namespace + "/" + b.App + "/" + b.Service }

// Bucket is one cumulative histogram bucket: Count requests took at most
// UpperBound seconds. The last bucket's UpperBound is +Inf.
type Bucket struct {
	UpperBound float64
	Count      float64
}

// Counts are what a backend served in a window.
type Counts struct {
	// Requests answered, excluding requests the client abandoned (code 499).
	Requests float64
	// Errors are the requests answered with a 5xx status.
	Errors float64
	// Latency is the cumulative latency histogram of the requests, ascending
	// by UpperBound; empty when the source has none.
	Latency []Bucket
}

// ErrNoData means the source answered but has no data for the backend (no
// series, an empty result, NaN): the analysis is inconclusive, never a pass.
var ErrNoData = errors.New("no data")

// Source reads Counts. Implementations are safe for concurrent use.
type Source interface {
	// Since returns what b served from start until now. An unreachable source
	// is an error; a source without data returns an error wrapping ErrNoData.
	Since(ctx context.Context, b Backend, start time.Time) (Counts, error)
}
