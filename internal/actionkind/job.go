package actionkind

import problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"

// job runs a Kubernetes Job per problem or per impacted entity. Its
// Secrets are the Pod's own business: its template may use the Secrets its
// ServiceAccount may, and problemhook reads none of them for it.
var job = &Kind{
	Type:          problemhookv1alpha1.ActionTypeJob,
	Field:         "job",
	set:           func(a *problemhookv1alpha1.Action) bool { return a.Job != nil },
	stopOnResolve: func(a *problemhookv1alpha1.Action) *bool { return a.Job.StopOnResolve },
}
