// Package jobs builds the Jobs of a route's Job actions and the client
// that writes them. Whose rights a route's Jobs are created with, and what
// their Pods may ask for: a route may do no more than the ServiceAccount
// it names. Starting, observing and stopping them is the ProblemEvent
// reconciler's (controllers/problemevent/jobs.go); the IntegrationRoute
// reconciler builds them too, to dry-run a route's Jobs.
package jobs

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/routing"
)

// Policy is what the operator lets a route's Jobs do. Its zero value is
// a single-tenant cluster: Jobs are created with the operator's own
// rights, and may not ask for the node.
type Policy struct {
	// DefaultServiceAccount is the ServiceAccount, in a route's namespace,
	// whose rights the Jobs of a route that names none get
	// (--default-service-account). A cluster that sets it is locked down:
	// no route acts with the operator's rights.
	DefaultServiceAccount string
	// AllowPrivileged lets Job templates ask for the node: privileged
	// containers, host namespaces, hostPath volumes (--allow-privileged-jobs).
	AllowPrivileged bool
	// Config and HTTPClient are the operator's connection to the API
	// server; impersonation wraps them, so a ServiceAccount's requests
	// share the operator's connections.
	Config     *rest.Config
	HTTPClient *http.Client
}

// Writer writes a route's Jobs as the identity it acts for.
type Writer struct {
	client.Client
	// as names the ServiceAccount, with where it was named, or is empty
	// when the operator acts with its own rights.
	as string
}

// Writer returns the client that checks, creates and deletes the Jobs of
// route (nil when it was deleted) in namespace ns.
func (p *Policy) Writer(operator client.Client, ns string, route *problemhookv1alpha1.IntegrationRoute) (*Writer, error) {
	sa, from := p.DefaultServiceAccount, "the manager's --default-service-account"
	if route != nil && route.Spec.ServiceAccountName != "" {
		sa, from = route.Spec.ServiceAccountName, "spec.serviceAccountName"
	}
	if sa == "" {
		return &Writer{Client: operator}, nil
	}
	if p.Config == nil || p.HTTPClient == nil {
		return nil, errors.New("jobs: Policy has no connection to impersonate ServiceAccounts with")
	}
	// The API server adds the ServiceAccount's groups to an impersonated
	// ServiceAccount, so RBAC sees exactly what the ServiceAccount's own
	// Pods would be.
	hc := *p.HTTPClient
	hc.Transport = transport.NewImpersonatingRoundTripper(transport.ImpersonationConfig{
		UserName: "system:serviceaccount:" + ns + ":" + sa,
	}, p.HTTPClient.Transport)
	c, err := client.New(p.Config, client.Options{HTTPClient: &hc, Scheme: operator.Scheme(), Mapper: operator.RESTMapper()})
	if err != nil {
		return nil, fmt.Errorf("impersonating ServiceAccount %s/%s: %w", ns, sa, err)
	}
	return &Writer{Client: c, as: fmt.Sprintf("ServiceAccount %s/%s (%s)", ns, sa, from)}, nil
}

// Refused reports whether the API server refused a request to the
// ServiceAccount the writer acts as.
func (w *Writer) Refused(err error) bool {
	return w.as != "" && apierrors.IsForbidden(err)
}

// Forbidden explains a request the API server refused to the writer's
// ServiceAccount: who, doing what, and the API server's own words, which
// name the missing permission.
func (w *Writer) Forbidden(err error, doing string) string {
	var status apierrors.APIStatus
	msg := err.Error()
	if errors.As(err, &status) {
		msg = status.Status().Message
	}
	return fmt.Sprintf("%s may not %s: %s", w.as, doing, msg)
}

// OwnsJobs clears what only the operator may ask of a Job it owns: an
// ownerReference that blocks its owner's deletion needs update rights on
// problemevents/finalizers, which a route's ServiceAccount has no reason
// to hold (the OwnerReferencesPermissionEnforcement admission plugin
// checks it). The garbage collector deletes the Job with its event either
// way.
func (w *Writer) OwnsJobs(job *batchv1.Job) {
	if w.as == "" {
		return
	}
	for i := range job.OwnerReferences {
		job.OwnerReferences[i].BlockOwnerDeletion = nil
	}
}

// NodeAccess refuses a Job that asks for the node, naming each field,
// unless the policy allows it. at is the path of the action's template.
func (p *Policy) NodeAccess(job *batchv1.Job, at string) error {
	if p.AllowPrivileged {
		return nil
	}
	fields := routing.NodeAccess(&batchv1.JobTemplateSpec{Spec: job.Spec})
	if len(fields) == 0 {
		return nil
	}
	for i, f := range fields {
		fields[i] = at + "." + f
	}
	return fmt.Errorf("%s: the Pod asks for the node, which this operator does not allow (--allow-privileged-jobs)", strings.Join(fields, ", "))
}

// Selector selects the Jobs the operator created: the manager caches
// those alone, not every Job of the cluster.
func Selector() labels.Selector {
	req, err := labels.NewRequirement(problemhookv1alpha1.LabelEvent, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant, valid label key
	}
	return labels.NewSelector().Add(*req)
}
