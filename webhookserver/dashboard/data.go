package dashboard

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/dtconn"
	"github.com/problemhook/problemhook/internal/dynatrace"
	"github.com/problemhook/problemhook/internal/feed"
	"github.com/problemhook/problemhook/internal/metrics"
)

// EventsPageSize is how many events one page of the events table shows.
const EventsPageSize = 50

// Overview is what the dashboard's front page shows.
type Overview struct {
	Version   string    `json:"version"`
	Replica   string    `json:"replica"`
	StartTime time.Time `json:"startTime"`
	Uptime    string    `json:"uptime"`
	// Replicas are the receiver Service's endpoints; ReplicasNote says why
	// there are none to show.
	Replicas     []Replica `json:"replicas"`
	ReplicasNote string    `json:"replicasNote,omitempty"`
	// Totals count what this replica did since it started: its
	// notifications, action runs and polls.
	metrics.Totals
	Events  EventCounts     `json:"events"`
	Targets []TargetSummary `json:"targets"`
	// Range is the time frame of EventsOverTime: 24h, in buckets of an
	// hour, or 7d, in buckets of 6 hours.
	Range string `json:"range"`
	// EventsOverTime counts the stored events by when they were received,
	// and their action runs by when they settled, oldest bucket first: a
	// glance shows notifications that stopped or failures that spiked.
	EventsOverTime []Bucket `json:"eventsOverTime"`

	chartRange ChartRange
}

// Ranges are the chart's time frames, for the page's links.
func (o *Overview) Ranges() []ChartRange { return chartRanges }

// EventsChart draws the events received in each bucket, open and resolved.
func (o *Overview) EventsChart() *Chart {
	return newChart("events-chart", "Events received, "+o.chartRange.Label, o.chartRange, o.EventsOverTime, eventSeries, 200)
}

// ActionsChart draws the action runs that settled in each bucket,
// succeeded and failed.
func (o *Overview) ActionsChart() *Chart {
	return newChart("actions-chart", "Action runs settled, "+o.chartRange.Label, o.chartRange, o.EventsOverTime, actionSeries, 140)
}

// Replica is one endpoint of the receiver Service.
type Replica struct {
	Pod     string `json:"pod"`
	Address string `json:"address"`
	Ready   bool   `json:"ready"`
}

// EventCounts are the stored ProblemEvents by phase.
type EventCounts struct {
	Total   int            `json:"total"`
	ByPhase map[string]int `json:"byPhase"`
}

// TargetSummary is one NotificationTarget as the overview shows it.
type TargetSummary struct {
	Namespace        string                          `json:"namespace"`
	Name             string                          `json:"name"`
	Format           string                          `json:"format"`
	Ready            string                          `json:"ready"`
	Reason           string                          `json:"reason,omitempty"`
	Message          string                          `json:"message,omitempty"`
	WebhookURL       string                          `json:"webhookURL,omitempty"`
	LastReceivedTime *metav1.Time                    `json:"lastReceivedTime,omitempty"`
	Events           int                             `json:"events"`
	Dynatrace        bool                            `json:"dynatrace"`
	Poll             *problemhookv1alpha1.PollStatus `json:"poll,omitempty"`
	// Registered is the Registered condition of a target that registers
	// itself in Dynatrace, with its message; empty otherwise.
	Registered        string `json:"registered,omitempty"`
	RegisteredMessage string `json:"registeredMessage,omitempty"`
}

func (d *Server) overview(ctx context.Context, r *http.Request) (any, error) {
	now := d.now()
	cr, err := lookupChartRange(r.URL.Query().Get("range"))
	if err != nil {
		return nil, err
	}
	o := &Overview{
		Version:    Version(),
		Replica:    hostname(),
		StartTime:  d.started,
		Uptime:     now.Sub(d.started).Round(time.Second).String(),
		Events:     EventCounts{ByPhase: map[string]int{}},
		Range:      cr.Name,
		chartRange: cr,
	}
	o.Replicas, o.ReplicasNote = d.replicas(ctx)
	totals, err := metrics.ReadTotals(d.gatherer())
	if err != nil {
		return nil, err
	}
	o.Totals = totals
	var targets problemhookv1alpha1.NotificationTargetList
	if err := d.Cache.List(ctx, &targets, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing NotificationTargets: %w", err)
	}
	var events problemhookv1alpha1.ProblemEventList
	if err := d.Cache.List(ctx, &events, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing ProblemEvents: %w", err)
	}
	perTarget := map[string]int{}
	overTime := newBucketCounter(cr, now)
	for i := range events.Items {
		ev := &events.Items[i]
		o.Events.Total++
		o.Events.ByPhase[string(cmp.Or(ev.Status.Phase, problemhookv1alpha1.PhasePending))]++
		perTarget[ev.Namespace+"/"+ev.Spec.Target]++
		overTime.add(ev)
	}
	o.EventsOverTime = overTime.buckets()
	for i := range targets.Items {
		t := &targets.Items[i]
		s := TargetSummary{
			Namespace: t.Namespace, Name: t.Name, Format: string(t.Spec.Format), Ready: string(metav1.ConditionUnknown),
			WebhookURL: t.Status.WebhookURL, LastReceivedTime: t.Status.LastReceivedTime,
			Events: perTarget[t.Namespace+"/"+t.Name], Dynatrace: t.Spec.Dynatrace != nil, Poll: t.Status.Poll,
		}
		if c := meta.FindStatusCondition(t.Status.Conditions, problemhookv1alpha1.ConditionReady); c != nil {
			s.Ready, s.Reason, s.Message = string(c.Status), c.Reason, c.Message
		}
		if c := meta.FindStatusCondition(t.Status.Conditions, problemhookv1alpha1.ConditionRegistered); c != nil {
			s.Registered, s.RegisteredMessage = string(c.Status), c.Message
		}
		o.Targets = append(o.Targets, s)
	}
	slices.SortFunc(o.Targets, func(a, b TargetSummary) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return o, nil
}

// replicas lists the receiver Service's endpoints, which are the replicas
// that take notifications.
func (d *Server) replicas(ctx context.Context) ([]Replica, string) {
	if d.APIReader == nil || d.Namespace == "" || d.Service == "" {
		return nil, "Not running behind a receiver Service: only this process receives."
	}
	var eps discoveryv1.EndpointSliceList
	err := d.APIReader.List(ctx, &eps, client.InNamespace(d.Namespace),
		client.MatchingLabels{discoveryv1.LabelServiceName: d.Service})
	if err != nil {
		return nil, fmt.Sprintf("The endpoints of Service %s/%s could not be read: %v", d.Namespace, d.Service, err)
	}
	var out []Replica
	for _, s := range eps.Items {
		for _, e := range s.Endpoints {
			r := Replica{Address: strings.Join(e.Addresses, ","), Ready: e.Conditions.Ready == nil || *e.Conditions.Ready}
			if e.TargetRef != nil {
				r.Pod = e.TargetRef.Name
			}
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Sprintf("Service %s/%s has no endpoints: outside a cluster, only this process receives.", d.Namespace, d.Service)
	}
	slices.SortFunc(out, func(a, b Replica) int { return cmp.Compare(a.Pod, b.Pod) })
	return out, ""
}

// EventFilter selects the events of the events table.
type EventFilter struct {
	// Target is namespace/name, or empty for all.
	Target string `json:"target,omitempty"`
	// State is OPEN or RESOLVED, or empty for both.
	State string `json:"state,omitempty"`
	// Phase is an EventPhase, or empty for all.
	Phase string `json:"phase,omitempty"`
}

// EventList is one page of the events table, newest first.
type EventList struct {
	Filter EventFilter `json:"filter"`
	Total  int         `json:"total"`
	Page   int         `json:"page"`
	Pages  int         `json:"pages"`
	Items  []EventRow  `json:"items"`
	// Targets, States and Phases are the values the filters offer.
	Targets, States, Phases []string `json:"-"`
	// PrevURL and NextURL link to the neighbouring pages, when there are.
	PrevURL, NextURL string `json:"-"`
}

// EventRow is one event in the events table.
type EventRow struct {
	Namespace  string    `json:"namespace"`
	Name       string    `json:"name"`
	Target     string    `json:"target"`
	State      string    `json:"state"`
	DisplayID  string    `json:"displayID,omitempty"`
	Title      string    `json:"title,omitempty"`
	Severity   string    `json:"severity,omitempty"`
	Phase      string    `json:"phase"`
	ReceivedAt time.Time `json:"receivedAt"`
	Test       bool      `json:"test,omitempty"`
	Origin     string    `json:"origin"`
	Actions    string    `json:"actions,omitempty"`
}

var (
	states = []string{string(problemhookv1alpha1.StateOpen), string(problemhookv1alpha1.StateResolved)}
	phases = []string{
		string(problemhookv1alpha1.PhasePending), string(problemhookv1alpha1.PhaseWaiting), string(problemhookv1alpha1.PhaseAwaitingApproval),
		string(problemhookv1alpha1.PhaseRunning), string(problemhookv1alpha1.PhaseSucceeded),
		string(problemhookv1alpha1.PhaseFailed), string(problemhookv1alpha1.PhaseSkipped),
	}
)

func (d *Server) events(ctx context.Context, r *http.Request) (any, error) {
	q := r.URL.Query()
	f := EventFilter{Target: q.Get("target"), State: strings.ToUpper(q.Get("state")), Phase: q.Get("phase")}
	opts := []client.ListOption{client.UnsafeDisableDeepCopy}
	labels := client.MatchingLabels{}
	if f.Target != "" {
		ns, name, ok := strings.Cut(f.Target, "/")
		if !ok || ns == "" || name == "" {
			return nil, badRequest("target %q is not namespace/name", f.Target)
		}
		opts = append(opts, client.InNamespace(ns))
		labels[problemhookv1alpha1.LabelTarget] = name
	}
	if f.State != "" {
		if !slices.Contains(states, f.State) {
			return nil, badRequest("state %q is not one of %s", q.Get("state"), strings.Join(states, ", "))
		}
		labels[problemhookv1alpha1.LabelState] = strings.ToLower(f.State)
	}
	if f.Phase != "" && !slices.Contains(phases, f.Phase) {
		return nil, badRequest("phase %q is not one of %s", f.Phase, strings.Join(phases, ", "))
	}
	page := 1
	if p := q.Get("page"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 {
			return nil, badRequest("page %q is not a positive number", p)
		}
		page = n
	}
	var list problemhookv1alpha1.ProblemEventList
	if err := d.Cache.List(ctx, &list, append(opts, labels)...); err != nil {
		return nil, fmt.Errorf("listing ProblemEvents: %w", err)
	}
	// Pointers into the cache's objects: nothing here may change them.
	matched := make([]*problemhookv1alpha1.ProblemEvent, 0, len(list.Items))
	for i := range list.Items {
		ev := &list.Items[i]
		if f.Phase == "" || string(cmp.Or(ev.Status.Phase, problemhookv1alpha1.PhasePending)) == f.Phase {
			matched = append(matched, ev)
		}
	}
	slices.SortFunc(matched, func(a, b *problemhookv1alpha1.ProblemEvent) int {
		return cmp.Or(b.Spec.ReceivedAt.Compare(a.Spec.ReceivedAt.Time), cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	out := &EventList{Filter: f, Total: len(matched), Page: page, Pages: max(1, (len(matched)+EventsPageSize-1)/EventsPageSize)}
	start := min((page-1)*EventsPageSize, len(matched))
	for _, ev := range matched[start:min(start+EventsPageSize, len(matched))] {
		out.Items = append(out.Items, EventRow{
			Namespace: ev.Namespace, Name: ev.Name, Target: ev.Spec.Target, State: string(ev.Spec.State),
			DisplayID: ev.Spec.DisplayID, Title: ev.Spec.Title, Severity: ev.Spec.Severity,
			Phase: string(cmp.Or(ev.Status.Phase, problemhookv1alpha1.PhasePending)), ReceivedAt: ev.Spec.ReceivedAt.Time,
			Test: ev.Spec.Test, Origin: string(cmp.Or(ev.Spec.Origin, problemhookv1alpha1.OriginNotification)),
			Actions: actionSummary(ev.Status.Actions),
		})
	}
	var targets problemhookv1alpha1.NotificationTargetList
	if err := d.Cache.List(ctx, &targets, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing NotificationTargets: %w", err)
	}
	for _, t := range targets.Items {
		out.Targets = append(out.Targets, t.Namespace+"/"+t.Name)
	}
	slices.Sort(out.Targets)
	out.States, out.Phases = states, phases
	if page > 1 {
		out.PrevURL = pageURL(f, page-1)
	}
	if page < out.Pages {
		out.NextURL = pageURL(f, page+1)
	}
	return out, nil
}

// pageURL links to page of the events f selects.
func pageURL(f EventFilter, page int) string {
	q := url.Values{"page": {strconv.Itoa(page)}}
	for k, v := range map[string]string{"target": f.Target, "state": f.State, "phase": f.Phase} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return "/events?" + q.Encode()
}

// actionSummary counts runs by state, e.g. "2 Succeeded, 1 Failed".
func actionSummary(runs []problemhookv1alpha1.ActionStatus) string {
	counts := map[problemhookv1alpha1.ActionState]int{}
	for _, a := range runs {
		counts[a.State]++
	}
	var parts []string
	for _, s := range []problemhookv1alpha1.ActionState{
		problemhookv1alpha1.ActionSucceeded, problemhookv1alpha1.ActionFailed, problemhookv1alpha1.ActionRunning,
		problemhookv1alpha1.ActionAwaitingApproval, problemhookv1alpha1.ActionPending, problemhookv1alpha1.ActionStopped,
		problemhookv1alpha1.ActionMuted, problemhookv1alpha1.ActionSkipped,
	} {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return strings.Join(parts, ", ")
}

// EventDetail is one event with what the detail page needs to link it.
type EventDetail struct {
	Event *problemhookv1alpha1.ProblemEvent
	// ProblemURL links to the problem in Dynatrace; EntityBase is the UI
	// base that entity ids link under. Both may be empty.
	ProblemURL, EntityBase string
	// Payload is the raw body as a tree, or nil when it is not JSON.
	Payload *node
}

func (d *Server) getEvent(ctx context.Context, r *http.Request) (*problemhookv1alpha1.ProblemEvent, error) {
	var ev problemhookv1alpha1.ProblemEvent
	key := client.ObjectKey{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	if err := d.Cache.Get(ctx, key, &ev); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, notFound("no ProblemEvent %s", key)
		}
		return nil, fmt.Errorf("reading ProblemEvent %s: %w", key, err)
	}
	ev.ManagedFields = nil
	return &ev, nil
}

func (d *Server) eventJSON(ctx context.Context, r *http.Request) (any, error) {
	return d.getEvent(ctx, r)
}

func (d *Server) event(ctx context.Context, r *http.Request) (any, error) {
	ev, err := d.getEvent(ctx, r)
	if err != nil {
		return nil, err
	}
	out := &EventDetail{Event: ev, ProblemURL: ev.Spec.URL}
	var target problemhookv1alpha1.NotificationTarget
	if err := d.Cache.Get(ctx, client.ObjectKey{Namespace: ev.Namespace, Name: ev.Spec.Target}, &target); err == nil {
		out.EntityBase = dtconn.UIBase(&target)
		if out.ProblemURL == "" && ev.Spec.Source.IsDynatrace() {
			out.ProblemURL = dtconn.ProblemURL(&target, ev.Spec.ProblemID)
		}
	}
	if out.ProblemURL == "" || !strings.HasPrefix(out.ProblemURL, "https://") && !strings.HasPrefix(out.ProblemURL, "http://") {
		out.ProblemURL = ""
	}
	out.Payload = jsonTree(ev.Spec.Payload, out.EntityBase)
	return out, nil
}

// Feed is a target's problem feed for one time frame.
type Feed struct {
	Namespace    string     `json:"namespace"`
	Target       string     `json:"target"`
	RelativeTime string     `json:"relativeTime"`
	From         string     `json:"from"`
	Problems     []feed.Row `json:"problems"`
	Recorded     int        `json:"recorded"`
	// RelativeTimes are the frames the page offers.
	RelativeTimes []string `json:"-"`
}

func (d *Server) feed(ctx context.Context, r *http.Request) (any, error) {
	key := client.ObjectKey{Namespace: r.PathValue("namespace"), Name: r.PathValue("name")}
	rel := cmp.Or(r.URL.Query().Get("relativeTime"), "hour")
	from, err := dynatrace.FromRelativeTime(rel)
	if err != nil {
		return nil, badRequest("%v", err)
	}
	var target problemhookv1alpha1.NotificationTarget
	if err := d.Cache.Get(ctx, key, &target); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, notFound("no NotificationTarget %s", key)
		}
		return nil, fmt.Errorf("reading NotificationTarget %s: %w", key, err)
	}
	if target.Spec.Dynatrace == nil {
		return nil, notFound("NotificationTarget %s has no Dynatrace API connection (spec.dynatrace): there is no feed to show", key)
	}
	dc, err := d.Dynatrace.For(ctx, d.Cache, &target)
	if err != nil {
		return nil, &httpError{status: http.StatusBadGateway, msg: err.Error()}
	}
	problems, err := dc.ListProblems(ctx, dynatrace.ListOptions{From: from, PageSize: dynatrace.MaxPageSize})
	if err != nil {
		return nil, &httpError{status: http.StatusBadGateway, msg: err.Error()}
	}
	var events problemhookv1alpha1.ProblemEventList
	if err := d.Cache.List(ctx, &events, client.InNamespace(target.Namespace),
		client.MatchingLabels{problemhookv1alpha1.LabelTarget: target.Name}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, fmt.Errorf("listing the ProblemEvents of %s: %w", key, err)
	}
	out := &Feed{Namespace: key.Namespace, Target: key.Name, RelativeTime: rel, From: from,
		Problems: feed.Rows(&target, problems, events.Items), RelativeTimes: dynatrace.RelativeTimeNames()}
	for _, row := range out.Problems {
		if len(row.Events) > 0 {
			out.Recorded++
		}
	}
	return out, nil
}
