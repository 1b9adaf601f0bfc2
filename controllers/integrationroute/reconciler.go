// Package integrationroute reconciles IntegrationRoutes: a route is Ready
// when its CEL expression and templates compile, its Secrets hold what its
// actions read, and its Jobs would be created (a server-side dry run as
// the route's ServiceAccount).
package integrationroute

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/internal/actionkind"
	"github.com/problemhook/problemhook/internal/jobs"
	"github.com/problemhook/problemhook/internal/metrics"
	"github.com/problemhook/problemhook/internal/routing"
	"github.com/problemhook/problemhook/internal/secretref"
	"github.com/problemhook/problemhook/internal/statuspatch"
)

// kind labels this reconciler's series of problemhook_ready.
const kind = "IntegrationRoute"

// routeSecretsIndex indexes IntegrationRoutes by the names of the Secrets they reference.
const routeSecretsIndex = ".spec.actions.secretNames"

// ForbiddenRecheckInterval is how often a route whose ServiceAccount may
// not create its Jobs is checked again.
const ForbiddenRecheckInterval = time.Minute

// Reconciler checks that an IntegrationRoute can run: its
// expression and templates compile, its Job templates are Jobs the API
// server accepts, and its Secrets exist. It reports this in Ready.
type Reconciler struct {
	// Deps.Jobs is what the route's Jobs may do; its dry runs are made
	// as the route's ServiceAccount.
	controllers.Deps
}

// SetupWithManager registers the reconciler, and the Secret index and
// watch that make a created or fixed Secret take effect at once.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	r.Deps = r.Defaulted()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &problemhookv1alpha1.IntegrationRoute{}, routeSecretsIndex, func(o client.Object) []string {
		return actionkind.SecretNames(&o.(*problemhookv1alpha1.IntegrationRoute).Spec)
	}); err != nil {
		return fmt.Errorf("indexing IntegrationRoutes by Secret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&problemhookv1alpha1.IntegrationRoute{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(controllers.Referencing(r.Client, &problemhookv1alpha1.IntegrationRouteList{}, routeSecretsIndex))).
		Complete(r)
}

// +kubebuilder:rbac:groups=problemhook.io,resources=integrationroutes,verbs=list;watch
// +kubebuilder:rbac:groups=problemhook.io,resources=integrationroutes/status,verbs=patch
// +kubebuilder:rbac:groups=batch,resources=jobs,verbs=create
// +kubebuilder:rbac:groups="",resources=serviceaccounts,verbs=impersonate

// Reconcile validates an IntegrationRoute and reports it in its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	var ir problemhookv1alpha1.IntegrationRoute
	if err := r.Get(ctx, req.NamespacedName, &ir); err != nil {
		if apierrors.IsNotFound(err) {
			metrics.ForgetReady(kind, req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	base := ir.DeepCopy()
	defer func() {
		retErr = errors.Join(retErr, statuspatch.Merge(ctx, r.Client, base, &ir, func(o *problemhookv1alpha1.IntegrationRoute) any { return o.Status }))
		metrics.SetReady(kind, ir.Namespace, ir.Name, meta.IsStatusConditionTrue(ir.Status.Conditions, problemhookv1alpha1.ConditionReady))
	}()
	ir.Status.ObservedGeneration = ir.Generation
	if ir.Spec.Suspend {
		meta.SetStatusCondition(&ir.Status.Conditions, metav1.Condition{Type: problemhookv1alpha1.ConditionSuspended, Status: metav1.ConditionTrue,
			ObservedGeneration: ir.Generation, Reason: problemhookv1alpha1.ReasonSuspended,
			Message: "Suspended: new events do not match the route until spec.suspend is false; the events it already runs go on"})
	} else {
		meta.RemoveStatusCondition(&ir.Status.Conditions, problemhookv1alpha1.ConditionSuspended)
	}

	reason, err := r.validate(ctx, &ir)
	if err != nil && reason == "" {
		return ctrl.Result{}, err // transient: the workqueue backs off
	}
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), "\n", "; ")
		problemhookv1alpha1.SetReady(&ir.Status.Conditions, ir.Generation, metav1.ConditionFalse, reason, msg)
		r.Recorder.Eventf(&ir, nil, corev1.EventTypeWarning, reason, "Validate", msg)
		if reason == problemhookv1alpha1.ReasonJobsForbidden {
			// Fixed by a RoleBinding, which the route does not watch:
			// check again now and then.
			return ctrl.Result{RequeueAfter: ForbiddenRecheckInterval}, nil
		}
		return ctrl.Result{}, reconcile.TerminalError(err)
	}
	problemhookv1alpha1.SetReady(&ir.Status.Conditions, ir.Generation, metav1.ConditionTrue, problemhookv1alpha1.ReasonReady,
		fmt.Sprintf("Routes matching events to %d actions", len(ir.Spec.Actions)))
	return ctrl.Result{}, nil
}

// validate checks the route as the ProblemEvent controller will use it. An
// error with a reason is the user's to fix; one without is transient.
func (r *Reconciler) validate(ctx context.Context, ir *problemhookv1alpha1.IntegrationRoute) (string, error) {
	if _, err := routing.Compile(&ir.Spec); err != nil {
		var fe *routing.FieldError
		if errors.As(err, &fe) {
			return fe.Reason, err
		}
		return problemhookv1alpha1.ReasonInvalidSpec, err
	}
	if err := r.checkSecrets(ctx, ir); err != nil {
		var (
			refErr *secretref.Error
			fe     *routing.FieldError
		)
		switch {
		case errors.As(err, &refErr):
			return refErr.Reason, err
		case errors.As(err, &fe):
			return fe.Reason, err
		}
		return "", err
	}
	var w *jobs.Writer
	for i := range ir.Spec.Actions {
		a := &ir.Spec.Actions[i]
		if a.Job == nil {
			continue
		}
		if w == nil {
			var err error
			if w, err = r.Jobs.Writer(r.Client, ir.Namespace, ir); err != nil {
				return "", err
			}
		}
		at := fmt.Sprintf("spec.actions[%d].job.template", i)
		job, err := dryRunJob(ir, a)
		if err != nil {
			return problemhookv1alpha1.ReasonInvalidJobTemplate, fmt.Errorf("%s: %w", at, err)
		}
		if err := r.Jobs.NodeAccess(job, at); err != nil {
			return problemhookv1alpha1.ReasonPrivilegedJobTemplate, err
		}
		w.OwnsJobs(job)
		// A dry run stores nothing, so no read need wait for the cache to
		// see it (and its answer has no resourceVersion to wait for).
		err = w.Create(ctx, job, client.DryRunAll, client.DisableReadYourWritesConsistency)
		switch {
		case err == nil:
		case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err):
			return problemhookv1alpha1.ReasonInvalidJobTemplate, fmt.Errorf("%s: %s", at, invalidJobMessage(err))
		case w.Refused(err):
			return problemhookv1alpha1.ReasonJobsForbidden, errors.New(w.Forbidden(err, "create the Jobs of action "+a.Name))
		default:
			return "", fmt.Errorf("checking the Job template of action %s: %w", a.Name, err)
		}
	}
	return "", nil
}

// dryRunJob builds the Job an action would create, for the API server to
// validate it as it would create it, without storing it: every rule of
// batch/v1 applies, including the ones no CRD schema could express.
func dryRunJob(ir *problemhookv1alpha1.IntegrationRoute, a *problemhookv1alpha1.Action) (*batchv1.Job, error) {
	p := &routing.Problem{
		Event: "dry-run", Namespace: ir.Namespace, Target: "dry-run", Source: string(problemhookv1alpha1.FormatDynatrace),
		ProblemID: "dry-run", DisplayID: "0", State: string(problemhookv1alpha1.StateOpen), Title: "Dry run",
		Tags: []string{}, ManagementZones: []string{},
		ImpactedEntities: []routing.Entity{{ID: "HOST-0000000000000000", Name: "dry-run", Type: "HOST"}},
	}
	var entity *routing.Entity
	if a.Job.PerImpactedEntity {
		entity = &p.ImpactedEntities[0]
	}
	job, err := jobs.New(p, ir, a, entity)
	if err != nil {
		return nil, err
	}
	job.GenerateName, job.Name = controllers.Truncate(ir.Name, 40)+"-dry-run-", ""
	return job, nil
}

// invalidJobMessage lists what the API server found wrong with a Job,
// each cause with its field.
func invalidJobMessage(err error) string {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || status.Status().Details == nil || len(status.Status().Details.Causes) == 0 {
		return err.Error()
	}
	var causes []string
	for _, c := range status.Status().Details.Causes {
		if c.Field != "" {
			causes = append(causes, c.Field+": "+c.Message)
		} else {
			causes = append(causes, c.Message)
		}
	}
	return strings.Join(causes, "; ")
}

// checkSecrets resolves every Secret key the route's actions reference,
// checks what the keys hold where the action's kind says what they must,
// and renders each template that reads a Secret with its values: a key
// the template reads that the Secret lacks is reported now, not when a
// problem arrives.
func (r *Reconciler) checkSecrets(ctx context.Context, ir *problemhookv1alpha1.IntegrationRoute) error {
	var compiled *routing.Route
	for i := range ir.Spec.Actions {
		a := &ir.Spec.Actions[i]
		kind := actionkind.Of(a)
		field := fmt.Sprintf("spec.actions[%d]", i)
		for _, ref := range kind.SecretRefs(a) {
			if _, err := readSecret(ctx, r.Client, ir.Namespace, ref, field+"."+ref.Field); err != nil {
				return err
			}
		}
		for _, t := range kind.Templates(a) {
			if t.Secrets == nil || t.Text == "" {
				continue
			}
			data, err := readSecret(ctx, r.Client, ir.Namespace, *t.Secrets, field+"."+t.Secrets.Field)
			if err != nil {
				return err
			}
			if compiled == nil {
				if compiled, err = routing.Compile(&ir.Spec); err != nil {
					return err
				}
			}
			if _, err := compiled.RenderWithSecrets(a.Name, t.Field, routing.SampleProblem(), data); err != nil {
				return &routing.FieldError{Field: field + "." + t.Field, Reason: problemhookv1alpha1.ReasonSecretKeyMissing, Err: fmt.Errorf("%w (Secret %s)", err, t.Secrets.Name)}
			}
		}
	}
	return nil
}

// readSecret reads the keys ref names (every key when it names none) and
// checks them as ref's kind says.
func readSecret(ctx context.Context, c client.Reader, namespace string, ref actionkind.SecretRef, field string) (map[string][]byte, error) {
	data, err := ref.Read(ctx, c, namespace, field)
	if err != nil {
		return nil, err
	}
	if ref.Validate != nil {
		if err := ref.Validate(data); err != nil {
			return nil, &routing.FieldError{Field: field, Reason: problemhookv1alpha1.ReasonInvalidSpec, Err: fmt.Errorf("%w (Secret %s)", err, ref.Name)}
		}
	}
	return data, nil
}
