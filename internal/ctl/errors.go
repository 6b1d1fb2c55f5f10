package ctl

import (
	"errors"
	"fmt"
	"net"
	"net/url"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// Exit codes of the command-line interface, documented in the README. A CI
// pipeline can tell a rolled-back release from a CLI that could not reach the
// cluster.
const (
	// ExitOK: done; for a watch, the release ended Released.
	ExitOK = 0
	// ExitOther: any other error.
	ExitOther = 1
	// ExitUsage: a bad flag or argument.
	ExitUsage = 2
	// ExitNotFound: no such application or namespace.
	ExitNotFound = 3
	// ExitForbidden: the API server refused the user (forbidden or unauthenticated).
	ExitForbidden = 4
	// ExitUnreachable: the API server could not be reached.
	ExitUnreachable = 5
	// ExitRefused: the action does not apply to this release (set-weight while
	// automation runs without --force, an override on a release without automation).
	ExitRefused = 6
	// ExitRolledBack: a watched release ended RolledBack.
	ExitRolledBack = 10
	// ExitFailed: a watched release ended Failed.
	ExitFailed = 11
	// ExitTimeout: a watch's --timeout passed before the release ended.
	ExitTimeout = 12
)

// ExitError is an error with the exit code the CLI ends with.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// Exit returns err with exit code code.
func Exit(code int, err error) error { return &ExitError{Code: code, Err: err} }

// ExitCode is the exit code for err: its ExitError's, else one derived from
// the API error it wraps.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	if e, ok := errors.AsType[*ExitError](err); ok {
		return e.Code
	}
	switch {
	case apierrors.IsNotFound(err):
		return ExitNotFound
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return ExitForbidden
	case unreachable(err):
		return ExitUnreachable
	}
	return ExitOther
}

// unreachable reports whether err is a failure to reach the API server (no
// answer from it, rather than an answer refusing the request).
func unreachable(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return false
	}
	_, isURL := errors.AsType[*url.Error](err)
	_, isNet := errors.AsType[net.Error](err)
	return isURL || isNet
}

// apiError explains err from the API server about a request to verb resource
// (in namespace ns, "" for all namespaces) for a person: which permission is
// missing, or that the server cannot be reached. Other errors are returned
// wrapped with what.
func apiError(err error, verb, resource, ns, what string) error {
	switch {
	case apierrors.IsForbidden(err):
		where := "in namespace " + ns
		check := fmt.Sprintf("kubectl auth can-i %s %s -n %s", verb, resource, ns)
		if ns == "" {
			where, check = "in any namespace", fmt.Sprintf("kubectl auth can-i %s %s -A", verb, resource)
		}
		return Exit(ExitForbidden, fmt.Errorf("%s: forbidden: you may not %s %s %s (missing RBAC verb %q on %s; check with: %s): %w",
			what, verb, resource, where, verb, resource, check, err))
	case apierrors.IsUnauthorized(err):
		return Exit(ExitForbidden, fmt.Errorf("%s: the API server did not accept your credentials (log in again or check your kubeconfig): %w", what, err))
	case unreachable(err):
		return Exit(ExitUnreachable, fmt.Errorf("%s: cannot reach the API server (check your kubeconfig's server and the network): %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}
