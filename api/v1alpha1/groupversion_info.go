// Package v1alpha1 contains the problemhook.io/v1alpha1 API: NotificationTarget,
// IntegrationRoute and ProblemEvent.
//
// +kubebuilder:object:generate=true
// +groupName=problemhook.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of this API.
	GroupVersion = schema.GroupVersion{Group: "problemhook.io", Version: "v1alpha1"}

	// SchemeBuilder registers the API's kinds with a runtime.Scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the API's kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&NotificationTarget{}, &NotificationTargetList{},
		&IntegrationRoute{}, &IntegrationRouteList{},
		&ProblemEvent{}, &ProblemEventList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
