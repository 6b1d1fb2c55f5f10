package apisix

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strconv"
	"strings"

	"github.com/fledge-dev/fledge/internal/traffic"
)

// Labels fledge puts on every APISIX object it creates. APISIX label values are
// 1-64 characters; fledge keeps them to [A-Za-z0-9._-], which every APISIX 3.x
// release accepts.
const (
	// LabelManagedBy marks an object as created by fledge; its value is ManagedByValue.
	LabelManagedBy = "managed-by"
	// ManagedByValue is the value of LabelManagedBy.
	ManagedByValue = "fledge"
	// LabelApp names the application ("<namespace>.<app>", or a hashed form when that
	// is too long or has other characters) an object belongs to.
	LabelApp = "fledge-app"
	// LabelService is the Kubernetes Service an upstream sends to (upstreams only).
	LabelService = "fledge-service"
	// LabelPort is the Service port an upstream sends to, in decimal (upstreams only).
	LabelPort = "fledge-port"
)

const (
	maxIDLen    = 64
	maxLabelLen = 64
	hashLen     = 16 // hex characters of SHA-256 kept in hashed IDs
	idPrefix    = "fledge"
)

var (
	// idRE is APISIX's object id pattern.
	idRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	// plainRE is an ID part that can be joined with dots without ambiguity.
	plainRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// labelValueRE is the label value pattern fledge keeps to.
	labelValueRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	unsafeRE     = regexp.MustCompile(`[^A-Za-z0-9_-]+`)
)

// RouteID returns the id of the APISIX route fledge manages for key:
// "fledge.<namespace>.<app>", or a hashed form (see compactID).
func RouteID(key traffic.Key) string {
	return compactID(idPrefix, key.Namespace, key.App)
}

// UpstreamID returns the id of the APISIX upstream fledge manages for backend b of
// the application key: "fledge.<namespace>.<app>.<service>.<port>", or a hashed
// form (see compactID). Upstreams are per application, so two applications that
// share a Service never share an upstream.
func UpstreamID(key traffic.Key, b traffic.Backend) string {
	return compactID(idPrefix, key.Namespace, key.App, b.Service, strconv.Itoa(int(b.Port)))
}

// appLabel is the value of LabelApp for key.
func appLabel(key traffic.Key) string {
	v := key.Namespace + "." + key.App
	if labelValueRE.MatchString(v) && plainRE.MatchString(key.Namespace) {
		// Namespaces have no dots, so the first dot separates namespace and app.
		return v
	}
	return hashed(v, sanitize(v), maxLabelLen)
}

// compactID joins parts with dots when the result is a valid, unambiguous APISIX
// id (every part is [A-Za-z0-9_-]+ and the whole is at most 64 characters).
// Otherwise it returns a readable prefix followed by "." and 16 hex characters of
// the SHA-256 of the parts, which is valid and deterministic.
func compactID(parts ...string) string {
	plain := true
	for _, p := range parts {
		if !plainRE.MatchString(p) {
			plain = false
			break
		}
	}
	joined := strings.Join(parts, ".")
	if plain && len(joined) <= maxIDLen {
		return joined
	}
	readable := make([]string, len(parts))
	for i, p := range parts {
		readable[i] = sanitize(p)
	}
	// NUL cannot appear in Kubernetes names, so this input is unambiguous.
	return hashed(strings.Join(parts, "\x00"), strings.Join(readable, "."), maxIDLen)
}

// hashed returns prefix (truncated) + "." + hash of input, at most max characters.
func hashed(input, prefix string, max int) string {
	sum := sha256.Sum256([]byte(input))
	h := hex.EncodeToString(sum[:])[:hashLen]
	keep := max - hashLen - 1
	if len(prefix) > keep {
		prefix = prefix[:keep]
	}
	prefix = strings.TrimRight(prefix, ".")
	if prefix == "" {
		return h
	}
	return prefix + "." + h
}

func sanitize(s string) string {
	s = unsafeRE.ReplaceAllString(s, "-")
	if s == "" {
		return "x"
	}
	return s
}

// ownLabels are the labels fledge puts on the route of key.
func ownLabels(key traffic.Key) map[string]string {
	return map[string]string{LabelManagedBy: ManagedByValue, LabelApp: appLabel(key)}
}

// upstreamLabels are the labels fledge puts on the upstream of b for key. They
// carry the Service name and port so that Observe reads back b exactly.
func upstreamLabels(key traffic.Key, b traffic.Backend) map[string]string {
	l := ownLabels(key)
	l[LabelService] = b.Service
	l[LabelPort] = strconv.Itoa(int(b.Port))
	return l
}

// ownedBy reports whether labels mark an object as fledge's for key.
func ownedBy(labels map[string]string, key traffic.Key) bool {
	return labels[LabelManagedBy] == ManagedByValue && labels[LabelApp] == appLabel(key)
}
