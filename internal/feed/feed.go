// Package feed lays out a target's Dynatrace problem feed beside the
// ProblemEvents that recorded each problem: the dashboard's feed page and
// `manager poll` show the same rows.
package feed

import (
	"cmp"
	"slices"
	"time"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
)

// Row is one problem of a feed, with the events problemhook recorded
// for it. `manager poll -o json` prints the same rows.
type Row struct {
	ProblemID string     `json:"problemId"`
	DisplayID string     `json:"displayId"`
	Title     string     `json:"title"`
	Status    string     `json:"status"`
	Severity  string     `json:"severity"`
	Impact    string     `json:"impact"`
	Start     time.Time  `json:"startTime"`
	End       *time.Time `json:"endTime"`
	Entities  []string   `json:"impactedEntities"`
	URL       string     `json:"url,omitempty"`
	Events    []EventRef `json:"events"`
}

// EventRef names a recorded event of a problem.
type EventRef struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// Rows lays out target's problems with the events, of those given,
// that record them, OPEN before RESOLVED.
func Rows(target *problemhookv1alpha1.NotificationTarget, problems []dynatrace.Problem, events []problemhookv1alpha1.ProblemEvent) []Row {
	recorded := map[string][]EventRef{}
	for _, ev := range events {
		if ev.Spec.Target == target.Name && ev.Namespace == target.Namespace {
			recorded[ev.Spec.ProblemID] = append(recorded[ev.Spec.ProblemID], EventRef{Name: ev.Name, State: string(ev.Spec.State)})
		}
	}
	rows := make([]Row, 0, len(problems))
	for _, p := range problems {
		row := Row{
			ProblemID: p.ProblemID, DisplayID: p.DisplayID, Title: p.Title, Status: p.Status,
			Severity: p.SeverityLevel, Impact: p.ImpactLevel, Start: time.UnixMilli(p.StartTime).UTC(),
			URL: dtconn.ProblemURL(target, p.ProblemID), Entities: []string{}, Events: []EventRef{},
		}
		if p.EndTime > 0 {
			end := time.UnixMilli(p.EndTime).UTC()
			row.End = &end
		}
		for _, e := range p.ImpactedEntities {
			row.Entities = append(row.Entities, cmp.Or(e.Name, e.EntityID.ID))
		}
		row.Events = append(row.Events, recorded[p.ProblemID]...)
		slices.SortFunc(row.Events, func(a, b EventRef) int { return cmp.Compare(a.State, b.State) })
		rows = append(rows, row)
	}
	return rows
}
