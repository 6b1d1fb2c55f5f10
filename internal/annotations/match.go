package annotations

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// fledge's own annotation keys.
const (
	// CanaryMatch, on the canary Service, lists predicates: requests matching all
	// of them always go to the canary, whatever its percentage. Example:
	//
	//	fledge.dev/canary-match: "header:X-Debug=1; cookie:beta=yes"
	CanaryMatch = "fledge.dev/canary-match"
	// Provider, on the stable Service, overrides the controller's default
	// traffic provider for the application: embedded, apisix or gatewayapi.
	Provider = "fledge.dev/provider"
	// GatewayParents, on the stable Service, overrides the controller's
	// --gateway-api-parent for the application: comma-separated
	// namespace/name[/sectionName] Gateway references.
	GatewayParents = "fledge.dev/gateway-api-parent"
	// TLSSecret, on the stable Service, names a kubernetes.io/tls Secret of
	// the Service's namespace: the embedded gateway serves the application's
	// host over HTTPS with its certificate (Release spec.tls). Example:
	//
	//	fledge.dev/tls-secret: shop-tls
	TLSSecret = "fledge.dev/tls-secret"
)

// ErrInvalidMatch is wrapped by every ParseMatch error.
var ErrInvalidMatch = errors.New("invalid predicate")

// tokenPattern is an HTTP token (RFC 9110 tchar): what a header or cookie
// name must be in this syntax.
var tokenPattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// ParseMatch parses the fledge.dev/canary-match syntax: predicates separated by
// ";", all of which must match. Each predicate is KIND:NAME followed by
//
//	=VALUE   the value equals VALUE            header:X-Debug=1
//	~REGEX   the value matches the RE2 REGEX   header:User-Agent~Firefox/1[0-9]{2}
//	nothing  the header/cookie/parameter is present   header:X-Debug
//
// where KIND is header, cookie or query. Header names are case-insensitive;
// cookie and query names are not. Spaces around predicates are ignored; a
// regular expression cannot contain ";".
func ParseMatch(s string) ([]fledgev1.Predicate, error) {
	var out []fledgev1.Predicate
	for i, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			return nil, fmt.Errorf("%w: predicate %d is empty", ErrInvalidMatch, i+1)
		}
		p, err := parsePredicate(part)
		if err != nil {
			return nil, fmt.Errorf("%w: predicate %d %q: %v", ErrInvalidMatch, i+1, part, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parsePredicate(s string) (fledgev1.Predicate, error) {
	kind, rest, ok := strings.Cut(s, ":")
	if !ok {
		return fledgev1.Predicate{}, errors.New(`want KIND:NAME[=VALUE|~REGEX] with KIND header, cookie or query`)
	}
	var p fledgev1.Predicate
	switch kind {
	case "header":
		p.Type = fledgev1.PredicateHeader
	case "cookie":
		p.Type = fledgev1.PredicateCookie
	case "query":
		p.Type = fledgev1.PredicateQuery
	default:
		return p, fmt.Errorf("unknown kind %q (want header, cookie or query)", kind)
	}
	i := strings.IndexAny(rest, "=~")
	name := rest
	p.Match = fledgev1.MatchPresent
	if i >= 0 {
		name, p.Value = rest[:i], rest[i+1:]
		p.Match = fledgev1.MatchExact
		if rest[i] == '~' {
			p.Match = fledgev1.MatchRegularExpression
		}
	}
	p.Name = strings.TrimSpace(name)
	if err := p.Validate(); err != nil {
		return p, err
	}
	if p.Type != fledgev1.PredicateQuery && !tokenPattern.MatchString(p.Name) {
		return p, fmt.Errorf("%s name %q has characters a %s name cannot have", kind, p.Name, kind)
	}
	return p, nil
}

// FormatMatch writes predicates in the ParseMatch syntax.
func FormatMatch(ps []fledgev1.Predicate) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		kind := strings.ToLower(string(p.Type))
		switch p.Match {
		case fledgev1.MatchPresent:
			parts[i] = kind + ":" + p.Name
		case fledgev1.MatchRegularExpression:
			parts[i] = kind + ":" + p.Name + "~" + p.Value
		default:
			parts[i] = kind + ":" + p.Name + "=" + p.Value
		}
	}
	return strings.Join(parts, "; ")
}
