package v1alpha1

// PredicateType says which part of a request a Predicate looks at.
// +kubebuilder:validation:Enum=Header;Cookie;Query
type PredicateType string

const (
	PredicateHeader PredicateType = "Header"
	PredicateCookie PredicateType = "Cookie"
	PredicateQuery  PredicateType = "Query"
)

// MatchType says how a Predicate compares the request's value.
// +kubebuilder:validation:Enum=Exact;RegularExpression;Present
type MatchType string

const (
	// MatchExact matches when the value equals Value.
	MatchExact MatchType = "Exact"
	// MatchRegularExpression matches when the value matches the RE2 expression Value
	// (unanchored, as Go's regexp.MatchString).
	MatchRegularExpression MatchType = "RegularExpression"
	// MatchPresent matches when the header, cookie or query parameter is present.
	MatchPresent MatchType = "Present"
)

// Predicate is one condition on a request. A request matches a list of predicates
// when it matches every one of them.
type Predicate struct {
	// Type is the part of the request: Header, Cookie or Query.
	Type PredicateType `json:"type"`
	// Name is the header, cookie or query parameter name. Header names are
	// case-insensitive; cookie and query names are case-sensitive.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Match is how the value is compared. Exact when empty.
	// +optional
	Match MatchType `json:"match,omitempty"`
	// Value is the exact value or the regular expression; unused for Present.
	// +optional
	Value string `json:"value,omitempty"`
}
