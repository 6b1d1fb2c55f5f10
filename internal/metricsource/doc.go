// Package metricsource reads the request counts and latency histograms that the
// canary analysis compares: per application backend (the stable or the canary
// Service), over a window that starts when the current analysis step started.
package metricsource
