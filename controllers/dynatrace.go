package controllers

import (
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
)

// CommentContext is the context of every comment problemhook posts; with
// the event's name in the text it finds its own comments again.
const CommentContext = "problemhook"

// DynatraceClientFunc builds the client of a target's Dynatrace connection.
type DynatraceClientFunc = dtconn.NewFunc

// Bounds of the details summary, within the CRD's.
const (
	maxDetailEntities = 64
	maxDetailEvidence = 20
)

// problemDetails summarises a problem read from the API within the bounds
// of ProblemDetails.
func problemDetails(p *dynatrace.Problem, now metav1.Time) *problemhookv1alpha1.ProblemDetails {
	d := &problemhookv1alpha1.ProblemDetails{
		DisplayID: truncate(p.DisplayID, problemhookv1alpha1.MaxShortFieldLength),
		Status:    truncate(p.Status, 64),
		Title:     truncate(p.Title, problemhookv1alpha1.MaxTitleLength),
		Severity:  truncate(p.SeverityLevel, 64),
		Impact:    truncate(p.ImpactLevel, 64),
		FetchedAt: &now,
	}
	for _, e := range p.ImpactedEntities {
		if len(d.ImpactedEntities) == maxDetailEntities {
			break
		}
		d.ImpactedEntities = append(d.ImpactedEntities, problemhookv1alpha1.ImpactedEntity{
			ID:   truncate(e.EntityID.ID, problemhookv1alpha1.MaxShortFieldLength),
			Name: truncate(e.Name, problemhookv1alpha1.MaxShortFieldLength),
			Type: truncate(e.EntityID.Type, problemhookv1alpha1.MaxShortFieldLength),
		})
	}
	for _, z := range p.ManagementZones {
		if len(d.ManagementZones) == problemhookv1alpha1.MaxZoneCount {
			break
		}
		d.ManagementZones = append(d.ManagementZones, truncate(z.Name, problemhookv1alpha1.MaxShortFieldLength))
	}
	for _, t := range p.EntityTags {
		if len(d.Tags) == problemhookv1alpha1.MaxTagCount {
			break
		}
		d.Tags = append(d.Tags, truncate(t.StringRepresentation, problemhookv1alpha1.MaxShortFieldLength))
	}
	if rc := p.RootCauseEntity; rc != nil {
		d.RootCause = truncate(fmt.Sprintf("%s (%s)", rc.Name, rc.EntityID.ID), 512)
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
			d.Evidence = append(d.Evidence, truncate(line, 512))
		}
	}
	return d
}

// commentMarker ends every comment problemhook posts for an event, so that
// a restart between posting and recording finds the comment instead of
// posting it again.
func commentMarker(ev *problemhookv1alpha1.ProblemEvent) string {
	return "ProblemEvent " + ev.Namespace + "/" + ev.Name
}

// commentText says, per action of the commenting routes, what ran and how
// it ended, e.g. "problemhook ran Job legacy-incident/incident for 2
// impacted entities: 2 succeeded".
func commentText(ev *problemhookv1alpha1.ProblemEvent, commenting map[string]bool) string {
	type key struct{ route, action string }
	var (
		order  []key
		groups = map[key][]problemhookv1alpha1.ActionStatus{}
	)
	for _, a := range ev.Status.Actions {
		if !commenting[a.Route] {
			continue
		}
		k := key{a.Route, a.Action}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], a)
	}
	var b strings.Builder
	for _, k := range order {
		runs := groups[k]
		if runs[0].Type == problemhookv1alpha1.ActionTypeJob {
			b.WriteString(jobLine(k.route, k.action, runs))
		} else {
			// A message is reported per recipient, as the old webhook
			// did: "Mobile number has been notified: +49*****1234".
			for _, a := range runs {
				fmt.Fprintf(&b, "problemhook %s %s/%s: %s\n", a.Type, k.route, k.action, truncate(a.Message, 300))
			}
		}
		if b.Len() > maxCommentBytes {
			b.WriteString("…\n")
			break
		}
	}
	b.WriteString(commentMarker(ev))
	return b.String()
}

// jobLine says how the Jobs of one action ended.
func jobLine(route, action string, runs []problemhookv1alpha1.ActionStatus) string {
	line := fmt.Sprintf("problemhook ran %s %s/%s", runs[0].Type, route, action)
	if runs[0].Entity != "" {
		noun := "entities"
		if len(runs) == 1 {
			noun = "entity"
		}
		line += fmt.Sprintf(" for %d impacted %s", len(runs), noun)
	}
	return line + ": " + outcomeSummary(runs) + "\n"
}

// maxCommentBytes bounds the comment, within what status.comment can hold.
const maxCommentBytes = 3500

// outcomeSummary says how the runs of one action ended: "succeeded" or
// "failed (exit code 3)" for a single run, counts with the failed runs'
// exit codes for a fan-out.
func outcomeSummary(runs []problemhookv1alpha1.ActionStatus) string {
	if len(runs) == 1 && runs[0].Entity == "" {
		a := runs[0]
		switch a.State {
		case problemhookv1alpha1.ActionSucceeded:
			return "succeeded"
		case problemhookv1alpha1.ActionStopped:
			return "stopped (problem resolved)"
		}
		if a.ExitCode != nil {
			return fmt.Sprintf("failed (exit code %d)", *a.ExitCode)
		}
		return "failed (" + truncate(a.Message, 200) + ")"
	}
	n := countStates(runs)
	succeeded, failed, stopped := n[problemhookv1alpha1.ActionSucceeded], n[problemhookv1alpha1.ActionFailed], n[problemhookv1alpha1.ActionStopped]
	var codes, reasons []string
	for _, a := range runs {
		switch {
		case a.State != problemhookv1alpha1.ActionFailed:
		case a.ExitCode != nil:
			codes = append(codes, fmt.Sprint(*a.ExitCode))
		case a.Message != "":
			reasons = append(reasons, a.Message)
		}
	}
	var parts []string
	if succeeded > 0 {
		parts = append(parts, fmt.Sprintf("%d succeeded", succeeded))
	}
	if failed > 0 {
		f := fmt.Sprintf("%d failed", failed)
		switch {
		case len(codes) == 1:
			f += " (exit code " + codes[0] + ")"
		case len(codes) > 1:
			f += " (exit codes " + strings.Join(codes, ", ") + ")"
		case len(reasons) > 0:
			f += " (" + truncate(reasons[0], 200) + ")"
		}
		parts = append(parts, f)
	}
	if stopped > 0 {
		parts = append(parts, fmt.Sprintf("%d stopped (problem resolved)", stopped))
	}
	return strings.Join(parts, ", ")
}
