// Package scheme builds the runtime.Scheme problemhook's clients use.
package scheme

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// New returns a scheme with the built-in kinds and problemhook's.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(problemhookv1alpha1.AddToScheme(s))
	return s
}
