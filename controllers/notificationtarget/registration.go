package notificationtarget

// Registration: the problem notification a NotificationTarget keeps in
// Dynatrace (a builtin:problem.notifications webhook in Settings 2.0), so
// that wiring Dynatrace to problemhook lives in Git with the target.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"k8s.io/utils/ptr"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/internal/credentials"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
)

// RegistrationFinalizer holds a registered target until its problem
// notification is deleted from Dynatrace: the one thing problemhook keeps
// outside the cluster.
const RegistrationFinalizer = "problemhook.io/registration"

// RegistrationPayload is the payload a registered problem notification
// sends: every placeholder the receiver reads.
const RegistrationPayload = `{"State":"{State}","ProblemID":"{ProblemID}","PID":"{PID}","ProblemTitle":"{ProblemTitle}",` +
	`"ProblemURL":"{ProblemURL}","ProblemSeverity":"{ProblemSeverity}","ProblemImpact":"{ProblemImpact}","Tags":"{Tags}",` +
	`"ImpactedEntities":{ImpactedEntities},"ProblemDetailsJSONv2":{ProblemDetailsJSONv2}}`

// ReregisterInterval is how often a registration in step is written again,
// to undo changes made to it in Dynatrace.
const ReregisterInterval = time.Hour

// externalID names a target's problem notification in Dynatrace.
func externalID(target *problemhookv1alpha1.NotificationTarget) string {
	return "problemhook-" + string(target.UID)
}

// register puts the target's problem notification in step, and returns
// when to check it again. A failure is recorded in Registered; it returns
// an error only for what retrying soon may fix.
func (r *Reconciler) register(ctx context.Context, target *problemhookv1alpha1.NotificationTarget) time.Duration {
	reg := target.Spec.Dynatrace.Registration
	st := target.Status.Registration
	if st == nil {
		st = &problemhookv1alpha1.RegistrationStatus{}
		target.Status.Registration = st
	}
	fail := func(err error) time.Duration {
		msg := controllers.Truncate(err.Error(), 1024)
		st.LastError = msg
		meta.SetStatusCondition(&target.Status.Conditions, metav1.Condition{Type: problemhookv1alpha1.ConditionRegistered, Status: metav1.ConditionFalse,
			ObservedGeneration: target.Generation, Reason: problemhookv1alpha1.ReasonRegistrationFailed, Message: msg})
		return time.Minute
	}
	if target.Spec.Format != problemhookv1alpha1.FormatDynatrace {
		return fail(fmt.Errorf("spec.dynatrace.registration: a problem notification posts the Dynatrace format; this target takes %s", target.Spec.Format))
	}
	auth, err := credentials.Authorization(ctx, r.Client, target)
	if err != nil {
		return fail(err)
	}
	c, err := r.Dynatrace.For(ctx, r.Client, target)
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithTimeout(ctx, dtconn.CallTimeout)
	defer cancel()
	profiles, err := c.SettingsObjects(ctx, dynatrace.SchemaAlertingProfile, "")
	if err != nil {
		return fail(fmt.Errorf("reading the alerting profiles: %w", err))
	}
	profile := reg.AlertingProfile
	if profile == "" {
		profile = "Default"
	}
	profileID := ""
	for _, p := range profiles {
		if p.Value["name"] == profile {
			profileID = p.ObjectID
		}
	}
	if profileID == "" {
		return fail(fmt.Errorf("spec.dynatrace.registration.alertingProfile: Dynatrace has no alerting profile named %q", profile))
	}
	hook := map[string]any{
		"url": reg.WebhookURL, "urlContainsSecret": false, "acceptAnyCertificate": reg.AcceptAnyCertificate,
		"notifyEventMergesEnabled": false, "notifyClosedProblems": ptr.Deref(reg.NotifyClosedProblems, true),
		"payload": RegistrationPayload, "useOAuth2": false, "headers": []any{},
	}
	if auth != "" {
		// Sent on every write: Dynatrace gives no secret back and refuses
		// an update that does not resend them.
		hook["headers"] = []any{map[string]any{"name": "Authorization", "secret": true, "secretValue": auth}}
	}
	value := map[string]any{
		"enabled": true, "displayName": controllers.Truncate("problemhook "+target.Namespace+"/"+target.Name, 100), "type": "WEBHOOK",
		"alertingProfile": profileID, "webHookNotification": hook,
	}
	data, err := json.Marshal(value)
	if err != nil {
		return fail(err)
	}
	sum := sha256.Sum256(append(data, target.Spec.Dynatrace.URL...))
	hash := hex.EncodeToString(sum[:16])
	if st.AppliedHash == hash && st.ObjectID != "" && st.LastAppliedTime != nil && r.Now().Sub(st.LastAppliedTime.Time) < ReregisterInterval {
		return st.LastAppliedTime.Add(ReregisterInterval).Sub(r.Now())
	}
	id, err := c.UpsertSettings(ctx, dynatrace.SettingsWrite{
		SchemaID: dynatrace.SchemaProblemNotifications, Scope: "environment", ExternalID: externalID(target), Value: value,
	})
	if err != nil {
		return fail(err)
	}
	now := metav1.NewTime(r.Now())
	*st = problemhookv1alpha1.RegistrationStatus{ObjectID: id, AppliedHash: hash, LastAppliedTime: &now}
	meta.SetStatusCondition(&target.Status.Conditions, metav1.Condition{Type: problemhookv1alpha1.ConditionRegistered, Status: metav1.ConditionTrue,
		ObservedGeneration: target.Generation, Reason: problemhookv1alpha1.ReasonRegistered,
		Message: fmt.Sprintf("Dynatrace posts problems of alerting profile %s to %s (settings object %s)", profile, reg.WebhookURL, id)})
	return ReregisterInterval
}

// unregister deletes the target's problem notification from Dynatrace,
// found by its externalId, and lets the target go.
func (r *Reconciler) unregister(ctx context.Context, target *problemhookv1alpha1.NotificationTarget) error {
	if !controllerutil.ContainsFinalizer(target, RegistrationFinalizer) {
		return nil
	}
	if target.Spec.Dynatrace != nil {
		c, err := r.Dynatrace.For(ctx, r.Client, target)
		if err != nil {
			return fmt.Errorf("deleting the problem notification of NotificationTarget %s/%s: %w", target.Namespace, target.Name, err)
		}
		ctx, cancel := context.WithTimeout(ctx, dtconn.CallTimeout)
		defer cancel()
		objects, err := c.SettingsObjects(ctx, dynatrace.SchemaProblemNotifications, externalID(target))
		if err != nil {
			return fmt.Errorf("finding the problem notification of NotificationTarget %s/%s: %w", target.Namespace, target.Name, err)
		}
		for _, o := range objects {
			if err := c.DeleteSettings(ctx, o.ObjectID); err != nil {
				return err
			}
		}
	}
	patch := client.MergeFrom(target.DeepCopy())
	controllerutil.RemoveFinalizer(target, RegistrationFinalizer)
	return client.IgnoreNotFound(r.Patch(ctx, target, patch))
}
