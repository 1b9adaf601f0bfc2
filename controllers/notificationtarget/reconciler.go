// Package notificationtarget reconciles NotificationTargets: their Ready
// condition and webhook URL, their registration in Dynatrace
// (registration.go), the retention of their events (retention.go), and the
// catch-up poller that records the problems whose notification never
// arrived (poll.go, a reconciler of its own).
package notificationtarget

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/internal/credentials"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/metrics"
	"github.com/problemhook/problemhook/internal/secretref"
	"github.com/problemhook/problemhook/internal/statuspatch"
)

// kind labels this reconciler's series of problemhook_ready.
const kind = "NotificationTarget"

// targetSecretsIndex indexes NotificationTargets by the names of the Secrets they reference.
const targetSecretsIndex = ".spec.secretNames"

// Reconciler checks that a NotificationTarget's Secrets
// resolve, publishes its webhook URL and reports whether it is Ready.
type Reconciler struct {
	controllers.Deps
	// ReceiverURL is the base URL senders reach the receiver at, e.g.
	// http://problemhook-receiver.problemhook-system.svc:9292.
	ReceiverURL string

	// sizes remembers the sizes of the targets' events for retention.
	sizes eventSizes
}

// SetupWithManager registers the reconciler and the Secret index and watch
// that make a created, fixed or rotated Secret take effect at once.
func (r *Reconciler) SetupWithManager(ctx context.Context, mgr ctrl.Manager) error {
	r.Deps = r.Defaulted()
	if err := mgr.GetFieldIndexer().IndexField(ctx, &problemhookv1alpha1.NotificationTarget{}, targetSecretsIndex, func(o client.Object) []string {
		return targetSecretNames(o.(*problemhookv1alpha1.NotificationTarget))
	}); err != nil {
		return fmt.Errorf("indexing NotificationTargets by Secret: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&problemhookv1alpha1.NotificationTarget{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(controllers.Referencing(r.Client, &problemhookv1alpha1.NotificationTargetList{}, targetSecretsIndex))).
		// A new event, or one whose actions settled, may put older ones
		// past the target's retention.
		Watches(&problemhookv1alpha1.ProblemEvent{}, handler.EnqueueRequestsFromMapFunc(targetOfEvent), builder.WithPredicates(retentionRelevant)).
		Complete(r)
}

// +kubebuilder:rbac:groups=problemhook.io,resources=notificationtargets,verbs=list;watch
// +kubebuilder:rbac:groups=problemhook.io,resources=notificationtargets/status,verbs=patch
// +kubebuilder:rbac:groups=problemhook.io,resources=notificationtargets,verbs=patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=list;watch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile validates a NotificationTarget and reports it in its status.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (res ctrl.Result, retErr error) {
	var target problemhookv1alpha1.NotificationTarget
	if err := r.Get(ctx, req.NamespacedName, &target); err != nil {
		if apierrors.IsNotFound(err) {
			r.sizes.forget(req.NamespacedName)
			metrics.ForgetReady(kind, req.Namespace, req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !target.DeletionTimestamp.IsZero() {
		metrics.ForgetReady(kind, target.Namespace, target.Name)
		return ctrl.Result{}, r.unregister(ctx, &target)
	}
	base := target.DeepCopy()
	defer func() {
		retErr = errors.Join(retErr, statuspatch.Merge(ctx, r.Client, base, &target, func(t *problemhookv1alpha1.NotificationTarget) any { return t.Status }))
		if target.Spec.Suspend {
			metrics.ForgetReady(kind, target.Namespace, target.Name)
			return
		}
		metrics.SetReady(kind, target.Namespace, target.Name, meta.IsStatusConditionTrue(target.Status.Conditions, problemhookv1alpha1.ConditionReady))
	}()

	recheck, err := r.enforceRetention(ctx, &target, r.Now())
	if err != nil {
		return ctrl.Result{}, err
	}
	res.RequeueAfter = recheck

	path := problemhookv1alpha1.WebhookPath(target.Namespace, target.Name)
	target.Status.ObservedGeneration = target.Generation
	target.Status.WebhookPath = path
	target.Status.WebhookURL = r.ReceiverURL + path

	if target.Spec.Suspend {
		problemhookv1alpha1.SetReady(&target.Status.Conditions, target.Generation, metav1.ConditionFalse, problemhookv1alpha1.ReasonSuspended, "Suspended: senders get 503 until spec.suspend is false")
		return res, nil
	}
	if err := r.validate(ctx, &target); err != nil {
		var refErr *secretref.Error
		switch {
		case errors.As(err, &refErr):
			r.notReady(&target, refErr.Reason, refErr.Error())
		case errors.Is(err, errInvalidCABundle):
			r.notReady(&target, problemhookv1alpha1.ReasonInvalidCABundle, err.Error())
		case errors.As(err, new(*dynatrace.OAuthError)):
			field := "spec.dynatrace.tokenSecretRef"
			if target.Spec.Dynatrace.OAuth != nil {
				field = "spec.dynatrace.oauth"
			}
			r.notReady(&target, problemhookv1alpha1.ReasonCredentialRefused, field+": "+err.Error())
			// Fixed in Dynatrace (a scope granted), which nothing here
			// watches: tried again now and then.
			if res.RequeueAfter == 0 || res.RequeueAfter > CredentialRecheckInterval {
				res.RequeueAfter = CredentialRecheckInterval
			}
			return res, nil
		default:
			return ctrl.Result{}, err // transient: the workqueue backs off
		}
		// The user must fix the target or its Secret; the Secret watch
		// brings the target back here when they do. Retention goes on.
		return res, reconcile.TerminalError(err)
	}
	problemhookv1alpha1.SetReady(&target.Status.Conditions, target.Generation, metav1.ConditionTrue, problemhookv1alpha1.ReasonReady, "Receiving notifications at "+path)
	if dt := target.Spec.Dynatrace; dt != nil && dt.Registration != nil {
		if !controllerutil.ContainsFinalizer(&target, RegistrationFinalizer) {
			patch := client.MergeFrom(target.DeepCopy())
			controllerutil.AddFinalizer(&target, RegistrationFinalizer)
			if err := r.Patch(ctx, &target, patch); err != nil {
				return res, fmt.Errorf("adding finalizer %s: %w", RegistrationFinalizer, err)
			}
		}
		if recheck := r.register(ctx, &target); res.RequeueAfter == 0 || recheck < res.RequeueAfter {
			res.RequeueAfter = recheck
		}
	} else if controllerutil.ContainsFinalizer(&target, RegistrationFinalizer) {
		// Registration removed from the spec: so is the notification.
		if err := r.unregister(ctx, &target); err != nil {
			return res, err
		}
		target.Status.Registration = nil
		meta.RemoveStatusCondition(&target.Status.Conditions, problemhookv1alpha1.ConditionRegistered)
	}
	return res, nil
}

var errInvalidCABundle = errors.New("spec.dynatrace.caBundle holds no PEM certificate")

// validate resolves every Secret the target references, as the receiver
// and the Dynatrace client will.
func (r *Reconciler) validate(ctx context.Context, target *problemhookv1alpha1.NotificationTarget) error {
	if _, err := credentials.Load(ctx, r.Client, target); err != nil {
		return err
	}
	dt := target.Spec.Dynatrace
	if dt == nil {
		return nil
	}
	if _, err := dtconn.Credential(ctx, r.Client, target); err != nil {
		return err
	}
	if len(dt.CABundle) > 0 && !x509.NewCertPool().AppendCertsFromPEM(dt.CABundle) {
		return errInvalidCABundle
	}
	// The credential is tried now: a wrong secret, a refused token or a
	// scope it lacks shows here, not in every event's status.
	c, err := r.Dynatrace.For(ctx, r.Client, target)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, credentialCheckTimeout)
	defer cancel()
	return c.CheckCredential(ctx)
}

// CredentialRecheckInterval is how often a refused credential is tried again.
const CredentialRecheckInterval = time.Minute

// credentialCheckTimeout bounds trying a target's credential: an
// environment that does not answer leaves the target Ready, and its
// events say why they were not enriched.
const credentialCheckTimeout = 5 * time.Second

func (r *Reconciler) notReady(target *problemhookv1alpha1.NotificationTarget, reason, msg string) {
	problemhookv1alpha1.SetReady(&target.Status.Conditions, target.Generation, metav1.ConditionFalse, reason, msg)
	r.Recorder.Eventf(target, nil, corev1.EventTypeWarning, reason, "Validate", msg)
}

// targetSecretNames lists the Secrets a target references.
func targetSecretNames(t *problemhookv1alpha1.NotificationTarget) []string {
	var names []string
	if b := t.Spec.Auth.Basic; b != nil {
		names = append(names, b.SecretRef.Name)
	}
	if b := t.Spec.Auth.Bearer; b != nil {
		names = append(names, b.SecretRef.Name)
	}
	if dt := t.Spec.Dynatrace; dt != nil && dt.TokenSecretRef != nil {
		names = append(names, dt.TokenSecretRef.Name)
	}
	if dt := t.Spec.Dynatrace; dt != nil && dt.OAuth != nil {
		names = append(names, dt.OAuth.ClientSecretRef.Name)
	}
	return names
}

// targetOfEvent maps a ProblemEvent to its NotificationTarget.
func targetOfEvent(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[problemhookv1alpha1.LabelTarget]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// retentionRelevant passes the event changes after which retention may
// have something to delete: a new event, and an event that settled.
var retentionRelevant = predicate.Funcs{
	UpdateFunc: func(e event.UpdateEvent) bool {
		old, okOld := e.ObjectOld.(*problemhookv1alpha1.ProblemEvent)
		ev, okNew := e.ObjectNew.(*problemhookv1alpha1.ProblemEvent)
		return okOld && okNew && !old.Settled() && ev.Settled()
	},
	DeleteFunc:  func(event.DeleteEvent) bool { return false },
	GenericFunc: func(event.GenericEvent) bool { return false },
}
