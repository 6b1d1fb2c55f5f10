package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// BackendRef names a Service in the TrafficRoute's namespace and one of its ports.
type BackendRef struct {
	// Service is the name of the Service.
	// +kubebuilder:validation:MinLength=1
	Service string `json:"service"`
	// Port is the Service port to send traffic to.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port int32 `json:"port"`
}

// RouteTLS names the certificate a host is served with over HTTPS.
type RouteTLS struct {
	// SecretName is a Secret of type kubernetes.io/tls, in the route's
	// namespace, holding the certificate chain (tls.crt) and private key
	// (tls.key) for the host. The gateway reads exactly this Secret; see
	// docs/security.md for the RBAC that grants it.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SecretName string `json:"secretName"`
}

// TrafficRouteSpec is what the embedded gateway serves for one host.
type TrafficRouteSpec struct {
	// Host is the request Host (without port) this route serves.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$`
	Host string `json:"host"`
	// Stable receives the traffic that does not go to the canary.
	Stable BackendRef `json:"stable"`
	// Canary, when set, receives CanaryWeight percent of the requests that do not
	// match Match, and every request that matches Match.
	// +optional
	Canary *BackendRef `json:"canary,omitempty"`
	// CanaryWeight is the percentage (0..100) of requests sent to the canary.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	// +optional
	CanaryWeight int32 `json:"canaryWeight,omitempty"`
	// Match lists predicates; a request matching all of them goes to the canary.
	// +optional
	Match []Predicate `json:"match,omitempty"`
	// TLS, when set, serves the host on the gateway's HTTPS listener with the
	// certificate of this Secret (chosen by SNI). Without it the host is
	// served over plain HTTP only.
	// +optional
	TLS *RouteTLS `json:"tls,omitempty"`
}

// TrafficRoute is the routing of one host as served by fledge's embedded gateway.
// The controller writes it; every gateway replica watches it.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=ftr,categories=fledge
// +kubebuilder:printcolumn:name="Host",type=string,JSONPath=`.spec.host`
// +kubebuilder:printcolumn:name="Stable",type=string,JSONPath=`.spec.stable.service`
// +kubebuilder:printcolumn:name="Canary",type=string,JSONPath=`.spec.canary.service`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.spec.canaryWeight`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type TrafficRoute struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec TrafficRouteSpec `json:"spec"`
}

// TrafficRouteList is a list of TrafficRoutes.
//
// +kubebuilder:object:root=true
type TrafficRouteList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []TrafficRoute `json:"items"`
}

func init() {
	SchemeBuilder.Register(&TrafficRoute{}, &TrafficRouteList{})
}
