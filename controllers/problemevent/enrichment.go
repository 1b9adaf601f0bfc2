package problemevent

// Enrichment: the problem's details read from the Dynatrace Problems API
// into the event's status, before it is routed.

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/outcall"
)

// enrich reads the problem from the target's Dynatrace connection into
// status.details. A failure is recorded and does not hold back the
// actions. It reports false while the read goes on past outcall.AwaitWindow: the
// event comes back when it ends.
func (r *Reconciler) enrich(ctx context.Context, ev *problemhookv1alpha1.ProblemEvent, target *problemhookv1alpha1.NotificationTarget) bool {
	if target == nil || target.Spec.Dynatrace == nil || !ev.Spec.Source.IsDynatrace() || ev.Spec.Test {
		return true
	}
	c, err := r.Dynatrace.For(ctx, r.Client, target)
	var problem *dynatrace.Problem
	if err == nil {
		var done bool
		problem, err, done = outcall.Await(ctx, r.calls, outcall.NewKey[*dynatrace.Problem](ev.UID, "enrich"), client.ObjectKeyFromObject(ev),
			func(ctx context.Context) (*dynatrace.Problem, error) {
				ctx, cancel := context.WithTimeout(ctx, dtconn.CallTimeout)
				defer cancel()
				return c.GetProblem(ctx, ev.Spec.ProblemID)
			})
		if !done {
			return false
		}
	}
	if err != nil {
		msg := controllers.Truncate(fmt.Sprintf("Reading problem %s from Dynatrace: %v; the actions run without its details", ev.Spec.ProblemID, err), 1024)
		meta.SetStatusCondition(&ev.Status.Conditions, metav1.Condition{
			Type: problemhookv1alpha1.ConditionEnriched, Status: metav1.ConditionFalse, ObservedGeneration: ev.Generation,
			Reason: problemhookv1alpha1.ReasonEnrichmentFailed, Message: msg,
		})
		r.Recorder.Eventf(ev, target, corev1.EventTypeWarning, problemhookv1alpha1.ReasonEnrichmentFailed, "Enrich", msg)
		return true
	}
	ev.Status.Details = problemDetails(problem, metav1.NewTime(r.Now()))
	meta.SetStatusCondition(&ev.Status.Conditions, metav1.Condition{
		Type: problemhookv1alpha1.ConditionEnriched, Status: metav1.ConditionTrue, ObservedGeneration: ev.Generation,
		Reason: problemhookv1alpha1.ReasonEnriched, Message: "Read problem " + problem.DisplayID + " from Dynatrace",
	})
	return true
}

// Bounds of the details summary, within the CRD's.
const (
	maxDetailEntities = 64
	maxDetailEvidence = 20
)

// problemDetails summarises a problem read from the API within the bounds
// of ProblemDetails.
func problemDetails(p *dynatrace.Problem, now metav1.Time) *problemhookv1alpha1.ProblemDetails {
	d := &problemhookv1alpha1.ProblemDetails{
		DisplayID: controllers.Truncate(p.DisplayID, problemhookv1alpha1.MaxShortFieldLength),
		Status:    controllers.Truncate(p.Status, 64),
		Title:     controllers.Truncate(p.Title, problemhookv1alpha1.MaxTitleLength),
		Severity:  controllers.Truncate(p.SeverityLevel, 64),
		Impact:    controllers.Truncate(p.ImpactLevel, 64),
		FetchedAt: &now,
	}
	for _, e := range p.ImpactedEntities {
		if len(d.ImpactedEntities) == maxDetailEntities {
			break
		}
		d.ImpactedEntities = append(d.ImpactedEntities, problemhookv1alpha1.ImpactedEntity{
			ID:   controllers.Truncate(e.EntityID.ID, problemhookv1alpha1.MaxShortFieldLength),
			Name: controllers.Truncate(e.Name, problemhookv1alpha1.MaxShortFieldLength),
			Type: controllers.Truncate(e.EntityID.Type, problemhookv1alpha1.MaxShortFieldLength),
		})
	}
	for _, z := range p.ManagementZones {
		if len(d.ManagementZones) == problemhookv1alpha1.MaxZoneCount {
			break
		}
		d.ManagementZones = append(d.ManagementZones, controllers.Truncate(z.Name, problemhookv1alpha1.MaxShortFieldLength))
	}
	for _, t := range p.EntityTags {
		if len(d.Tags) == problemhookv1alpha1.MaxTagCount {
			break
		}
		d.Tags = append(d.Tags, controllers.Truncate(t.StringRepresentation, problemhookv1alpha1.MaxShortFieldLength))
	}
	if rc := p.RootCauseEntity; rc != nil {
		d.RootCause = controllers.Truncate(fmt.Sprintf("%s (%s)", rc.Name, rc.EntityID.ID), 512)
	}
	if ev := p.EvidenceDetails; ev != nil {
		for _, e := range ev.Details {
			if len(d.Evidence) == maxDetailEvidence {
				break
			}
			line := e.EvidenceType + ": " + e.DisplayName
			if e.Entity.Name != "" {
				line += " on " + e.Entity.Name
			}
			if e.RootCauseRelevant {
				line += " (root cause)"
			}
			d.Evidence = append(d.Evidence, controllers.Truncate(line, 512))
		}
	}
	return d
}
