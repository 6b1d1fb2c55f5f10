package annotations

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Notify names the Secrets, in the application's namespace, whose webhooks
// are told of the automation's decisions, separated by commas, for example
//
//	fledge.dev/notify: "team-slack, audit-webhook"
//
// Each Secret holds the webhook's address under key "url" and, optionally,
// its payload format under key "format" ("json", the default, or "slack").
// On the canary Service, or on a Release written by hand.
const Notify = "fledge.dev/notify"

// ParseNotify parses the Notify annotation into Secret names: valid DNS
// subdomain names, none repeated, at least one.
func ParseNotify(v string) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	for part := range strings.SplitSeq(v, ",") {
		name := strings.TrimSpace(part)
		if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
			return nil, fmt.Errorf("%w: Secret name %q: %s", ErrInvalidValue, name, strings.Join(errs, "; "))
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: Secret %q named twice", ErrInvalidValue, name)
		}
		seen[name] = true
		names = append(names, name)
	}
	return names, nil
}
