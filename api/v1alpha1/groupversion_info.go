// Package v1alpha1 holds fledge's API: Release (one published application and how
// its traffic is split between a stable and a canary Service) and TrafficRoute (the
// routing the embedded gateway serves).
//
// +kubebuilder:object:generate=true
// +groupName=fledge.dev
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of fledge's API objects.
	GroupVersion = schema.GroupVersion{Group: "fledge.dev", Version: "v1alpha1"}

	// SchemeBuilder registers the types of this package with a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
