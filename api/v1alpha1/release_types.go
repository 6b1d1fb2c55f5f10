package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ServiceRef names a Service in the Release's namespace.
type ServiceRef struct {
	// Name is the name of the Service.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Port is the Service port to route to. When empty, the Service's first port.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
}

// Provider names the thing that moves traffic for a Release.
// +kubebuilder:validation:Enum=embedded;apisix;gatewayapi
type Provider string

const (
	ProviderEmbedded   Provider = "embedded"
	ProviderAPISIX     Provider = "apisix"
	ProviderGatewayAPI Provider = "gatewayapi"
)

// ReleaseSpec is the desired publication of one application.
type ReleaseSpec struct {
	// Host is the request Host the application is published under. Defaults to
	// the Release's name.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$`
	Host string `json:"host,omitempty"`
	// Stable is the Service serving the current version. A Release without a
	// stable Service is unpublished unless its canary is at 100%.
	// +optional
	Stable *ServiceRef `json:"stable,omitempty"`
	// Canary is the Service serving the new version, if a release is under way.
	// +optional
	Canary *ServiceRef `json:"canary,omitempty"`
	// CanaryWeight is the percentage (0..100) of traffic for the canary when no
	// automated policy drives it: 0 rolls back, 100 releases.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	CanaryWeight int32 `json:"canaryWeight,omitempty"`
	// Match lists predicates; requests matching all of them always go to the canary.
	// +optional
	Match []Predicate `json:"match,omitempty"`
	// TLS, when set, has the embedded gateway serve the host over HTTPS with
	// the certificate of a kubernetes.io/tls Secret in the Release's namespace.
	// The apisix and gatewayapi providers ignore it: those gateways terminate
	// TLS by their own configuration.
	// +optional
	TLS *RouteTLS `json:"tls,omitempty"`
	// Provider overrides the controller's default traffic provider for this Release.
	// +optional
	Provider Provider `json:"provider,omitempty"`
	// GatewayParents overrides, for the gatewayapi provider, the controller's
	// --gateway-api-parent: the Gateways the HTTPRoute attaches to, each
	// "namespace/name" or "namespace/name/sectionName".
	// +kubebuilder:validation:MaxItems=32
	// +optional
	GatewayParents []string `json:"gatewayParents,omitempty"`
	// Auto, when set, lets fledge move the canary weight by itself; CanaryWeight
	// is then ignored.
	// +optional
	Auto *AutoPolicy `json:"auto,omitempty"`
}

// Phase is a one-word summary of a Release.
type Phase string

const (
	// PhaseStable: only the stable Service serves.
	PhaseStable Phase = "Stable"
	// PhaseCanary: a canary serves part of the traffic.
	PhaseCanary Phase = "Canary"
	// PhaseReleased: the canary serves all traffic.
	PhaseReleased Phase = "Released"
	// PhaseUnpublished: nothing is routed for the application.
	PhaseUnpublished Phase = "Unpublished"
	// PhaseFailed: the provider could not apply the routing.
	PhaseFailed Phase = "Failed"
	// PhaseProgressing: the automation is stepping the canary up.
	PhaseProgressing Phase = "Progressing"
	// PhasePaused: an override, or the progress deadline (deadlineAction
	// pause), holds the canary's weight.
	PhasePaused Phase = "Paused"
	// PhaseRolledBack: the automation (or an abort) rolled the canary back.
	PhaseRolledBack Phase = "RolledBack"
)

// Condition types and reasons of a Release.
const (
	// ConditionAccepted is True when the Release's input (annotations or spec) is valid.
	ConditionAccepted = "Accepted"
	// ConditionRouted is True when the provider serves exactly the desired routing.
	ConditionRouted = "Routed"

	ReasonValid         = "Valid"
	ReasonInvalidInput  = "InvalidInput"
	ReasonRouteApplied  = "RouteApplied"
	ReasonRouteFailed   = "RouteFailed"
	ReasonRouteMismatch = "RouteMismatch"
	ReasonNotRouted     = "NotRouted"

	// ConditionAnalysis is True while the canary passes its analysis, False
	// when it failed, Unknown while inconclusive (automated releases only).
	ConditionAnalysis = "Analysis"
)

// ReleaseStatus is what fledge observed and did for a Release.
type ReleaseStatus struct {
	// ObservedGeneration is the generation of the spec last acted on.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Phase is a one-word summary.
	// +optional
	Phase Phase `json:"phase,omitempty"`
	// Host is the request Host the application is published under.
	// +optional
	Host string `json:"host,omitempty"`
	// Provider is the traffic provider in use.
	// +optional
	Provider Provider `json:"provider,omitempty"`
	// Stable is the stable Service in effect.
	// +optional
	Stable string `json:"stable,omitempty"`
	// Canary is the canary Service in effect.
	// +optional
	Canary string `json:"canary,omitempty"`
	// DesiredWeight is the canary weight fledge wants to serve.
	// +optional
	DesiredWeight int32 `json:"desiredWeight"`
	// EffectiveWeight is the canary weight the provider reports it serves.
	// +optional
	EffectiveWeight int32 `json:"effectiveWeight"`
	// Auto is the state of the automated release, when Spec.Auto is set.
	// +optional
	Auto *AutoStatus `json:"auto,omitempty"`
	// Conditions: Accepted, Routed.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Release is one application published through the gateway: its stable Service,
// its canary Service and the share of traffic the canary gets. fledge creates one
// from the api7.cloud/published-service annotations, or a user writes it directly.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=frel,categories=fledge
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.status.host`
// +kubebuilder:printcolumn:name="Stable",type=string,JSONPath=`.status.stable`
// +kubebuilder:printcolumn:name="Canary",type=string,JSONPath=`.status.canary`
// +kubebuilder:printcolumn:name="Desired",type=integer,JSONPath=`.status.desiredWeight`
// +kubebuilder:printcolumn:name="Effective",type=integer,JSONPath=`.status.effectiveWeight`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Routed",type=string,JSONPath=`.status.conditions[?(@.type=="Routed")].reason`
// +kubebuilder:printcolumn:name="Verdict",type=string,JSONPath=`.status.auto.reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Release struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ReleaseSpec   `json:"spec"`
	Status ReleaseStatus `json:"status,omitempty"`
}

// ReleaseList is a list of Releases.
//
// +kubebuilder:object:root=true
type ReleaseList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Release `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Release{}, &ReleaseList{})
}
