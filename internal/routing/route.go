package routing

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"

	"github.com/google/cel-go/cel"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/actionkind"
)

// FieldError is what is wrong with one field of an IntegrationRoute's spec.
type FieldError struct {
	// Field is the path of the field, e.g. spec.actions[2].twilio.body.
	Field string
	// Reason is the Ready condition's reason: ReasonInvalidExpression,
	// ReasonInvalidTemplate or ReasonInvalidJobTemplate.
	Reason string
	// Err says what is wrong.
	Err error
}

// Error returns "<field>: <err>".
func (e *FieldError) Error() string {
	return e.Field + ": " + e.Err.Error()
}

// Unwrap returns the underlying error.
func (e *FieldError) Unwrap() error {
	return e.Err
}

// FieldErrors returns the FieldErrors in err, which Compile returns alone or
// joined, in the order of the spec's fields.
func FieldErrors(err error) []*FieldError {
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		var out []*FieldError
		for _, e := range joined.Unwrap() {
			out = append(out, FieldErrors(e)...)
		}
		return out
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return []*FieldError{fe}
	}
	return nil
}

// Route is an IntegrationRoute compiled: its match and its text templates. It
// is safe for concurrent use.
type Route struct {
	targets []string
	match   problemhookv1alpha1.RouteMatch
	// impacts holds match.impacts in the form impactKey compares.
	impacts []string
	program cel.Program
	// templates maps templateKey(action, field) to the parsed template.
	templates map[string]*template.Template
	// kinds maps each action's name to its kind.
	kinds map[string]*actionkind.Kind
	// mutes are the muteTimeIntervals, parsed.
	mutes []muteInterval
}

// Compile checks and compiles a route's spec. Its error is a *FieldError, or
// errors.Join of several, naming the field: spec.match.expression when the CEL
// expression does not compile or is not a bool; spec.actions[i].twilio.body,
// .dingtalk.title, .dingtalk.text or .http.body when a text template does not
// parse or names a field the problem lacks; spec.actions[i].job.template when
// the Job template is not a strict batch/v1 JobTemplateSpec;
// spec.muteTimeIntervals[i].weekdays[j] (and the other fields of a time
// interval) when it is not what Alertmanager accepts there. Each template is
// rendered for SampleProblem, and refused when that fails or passes a bound
// of the render budget.
func Compile(spec *problemhookv1alpha1.IntegrationRouteSpec) (*Route, error) {
	if spec == nil {
		return nil, errors.New("compiling route: no spec")
	}
	r := &Route{
		targets:   slices.Clone(spec.Targets),
		match:     *spec.Match.DeepCopy(),
		templates: map[string]*template.Template{},
		kinds:     map[string]*actionkind.Kind{},
	}
	for _, impact := range spec.Match.Impacts {
		r.impacts = append(r.impacts, impactKey(impact))
	}
	var errs []error
	if spec.Match.Expression != "" {
		prg, err := compileExpression(spec.Match.Expression)
		if err != nil {
			errs = append(errs, &FieldError{
				Field: "spec.match.expression", Reason: problemhookv1alpha1.ReasonInvalidExpression, Err: err,
			})
		}
		r.program = prg
	}
	for i := range spec.Actions {
		errs = append(errs, r.compileAction(i, &spec.Actions[i])...)
	}
	mutes, muteErrs := compileMutes(spec.MuteTimeIntervals)
	r.mutes, errs = mutes, append(errs, muteErrs...)
	switch len(errs) {
	case 0:
		return r, nil
	case 1:
		return nil, errs[0]
	default:
		return nil, errors.Join(errs...)
	}
}

// compileAction parses an action's templates, or decodes its Job template.
func (r *Route) compileAction(i int, a *problemhookv1alpha1.Action) []error {
	var errs []error
	field := func(f string) string { return fmt.Sprintf("spec.actions[%d].%s", i, f) }
	kind := actionkind.Of(a)
	r.kinds[a.Name] = kind
	for _, tpl := range kind.Templates(a) {
		if tpl.Text == "" {
			continue
		}
		t, err := parseTemplate(tpl.Field, tpl.Text)
		if err == nil {
			// A template that fails, or passes a bound, for a problem like
			// any other is refused now rather than when a problem arrives.
			var secret func(string) (string, error)
			if tpl.Secrets != nil {
				secret = sampleSecrets{}.secret
			}
			if _, err = execute(t, SampleProblem(), secret); err != nil {
				err = fmt.Errorf("rendering it for a sample problem: %w", err)
			}
		}
		if err != nil {
			errs = append(errs, &FieldError{Field: field(tpl.Field), Reason: problemhookv1alpha1.ReasonInvalidTemplate, Err: err})
			continue
		}
		r.templates[templateKey(a.Name, tpl.Field)] = t
	}
	if a.Job != nil {
		if _, err := JobTemplate(rawTemplate(&a.Job.Template)); err != nil {
			errs = append(errs, &FieldError{Field: field("job.template"), Reason: problemhookv1alpha1.ReasonInvalidJobTemplate, Err: err})
		}
	}
	return errs
}

// Matches reports whether the problem comes from one of the route's targets
// (any, when it names none) and meets every criterion of its match. It returns an error only when the CEL expression fails to evaluate,
// e.g. when it exceeds its cost limit.
func (r *Route) Matches(p *Problem) (bool, error) {
	failed, err := r.mismatch(p)
	return failed == "" && err == nil, err
}

// The criteria of a match, in the order Matches tries them: the first
// that fails is the one WhyNot names.
const (
	criterionTargets         = "targets"
	criterionStates          = "states"
	criterionSeverities      = "severities"
	criterionImpacts         = "impacts"
	criterionTags            = "tags"
	criterionManagementZones = "managementZones"
	criterionEntities        = "entities"
	criterionExpression      = "expression"
)

// mismatch returns the first criterion the problem fails, or "" when it
// meets them all. It builds no text: Matches runs for every event and route.
func (r *Route) mismatch(p *Problem) (string, error) {
	if p == nil {
		return "", errors.New("matching route: no problem")
	}
	if len(r.targets) > 0 && !slices.Contains(r.targets, p.Target) {
		return criterionTargets, nil
	}
	m := &r.match
	if len(m.States) > 0 && !slices.Contains(m.States, problemhookv1alpha1.ProblemState(p.State)) {
		return criterionStates, nil
	}
	// An INFO event says nothing is abnormal: only a route that asks for
	// INFO runs for it, not one that names no severity.
	if (len(m.Severities) > 0 || isInfo(p)) && !slices.ContainsFunc(m.Severities, func(s string) bool { return strings.EqualFold(s, p.Severity) }) {
		return criterionSeverities, nil
	}
	if len(r.impacts) > 0 && !slices.Contains(r.impacts, impactKey(p.Impact)) {
		return criterionImpacts, nil
	}
	if r.missingTag(p) != "" {
		return criterionTags, nil
	}
	if len(m.ManagementZones) > 0 && !slices.ContainsFunc(p.ManagementZones, func(z string) bool { return slices.Contains(m.ManagementZones, z) }) {
		return criterionManagementZones, nil
	}
	if r.filtersEntities() && !slices.ContainsFunc(p.ImpactedEntities, r.entityMatches) {
		return criterionEntities, nil
	}
	if r.program == nil {
		return "", nil
	}
	ok, err := evalExpression(r.program, p)
	if err != nil || ok {
		return "", err
	}
	return criterionExpression, nil
}

func isInfo(p *Problem) bool {
	return strings.EqualFold(p.Severity, problemhookv1alpha1.SeverityInfo)
}

// missingTag returns the first tag of match.tags the problem lacks, or "".
func (r *Route) missingTag(p *Problem) string {
	for _, want := range r.match.Tags {
		if !hasTag(p.Tags, want) {
			return want
		}
	}
	return ""
}

// WhyNot says why the problem does not match the route: the first
// criterion, in the order Matches tries them, that it fails, with the
// field that sets it and what the problem has instead. It returns ""
// when the problem matches, and Matches' error when the expression fails
// to evaluate. It is for people testing a route, not for matching.
func (r *Route) WhyNot(p *Problem) (string, error) {
	failed, err := r.mismatch(p)
	if err != nil || failed == "" {
		return "", err
	}
	m := &r.match
	switch failed {
	case criterionTargets:
		return fmt.Sprintf("spec.targets %s does not list the event's target %q", list(r.targets), p.Target), nil
	case criterionStates:
		return fmt.Sprintf("spec.match.states %s does not hold the problem's state %q", list(m.States), p.State), nil
	case criterionSeverities:
		if len(m.Severities) == 0 {
			return "the problem's severity is INFO, which runs only a route whose spec.match.severities lists it", nil
		}
		return fmt.Sprintf("spec.match.severities %s does not hold the problem's severity %q", list(m.Severities), p.Severity), nil
	case criterionImpacts:
		return fmt.Sprintf("spec.match.impacts %s does not hold the problem's impact %q", list(m.Impacts), p.Impact), nil
	case criterionTags:
		return fmt.Sprintf("spec.match.tags: the problem has no tag %q (its tags: %s)", r.missingTag(p), list(p.Tags)), nil
	case criterionManagementZones:
		return fmt.Sprintf("spec.match.managementZones %s holds none of the problem's management zones %s", list(m.ManagementZones), list(p.ManagementZones)), nil
	case criterionEntities:
		var want []string
		if len(m.EntityTypes) > 0 {
			want = append(want, "of a type in spec.match.entityTypes "+list(m.EntityTypes))
		}
		if len(m.EntityNames) > 0 {
			want = append(want, "named in spec.match.entityNames "+list(m.EntityNames))
		}
		impacted := make([]string, 0, len(p.ImpactedEntities))
		for _, e := range p.ImpactedEntities {
			impacted = append(impacted, e.Type+" "+e.Name)
		}
		return fmt.Sprintf("no impacted entity is %s (impacted: %s)", strings.Join(want, " and "), list(impacted)), nil
	default:
		return "spec.match.expression is false for the problem", nil
	}
}

// list shows a list of values as [a, b], and an empty one as [].
func list[S ~string](values []S) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = string(v)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// Entities returns the impacted entities a per-entity Job action fans out
// over: those that pass the route's entityTypes and entityNames, when it has
// them, else all of them.
func (r *Route) Entities(p *Problem) []Entity {
	out := []Entity{}
	if p == nil {
		return out
	}
	for _, e := range p.ImpactedEntities {
		if r.entityMatches(e) {
			out = append(out, e)
		}
	}
	return out
}

// Run is one run of an action that a matching route asks for.
type Run struct {
	// Action is the action, an element of the spec's actions.
	Action *problemhookv1alpha1.Action
	// Entity is the impacted entity of a per-entity Job's run, else nil.
	Entity *Entity
	// Recipient is the recipient of a run of a kind that sends to each
	// (a Twilio number, as the route writes it), else "".
	Recipient string
	// NoEntities marks the one run of a per-entity Job for a problem
	// with no impacted entity to run it for: it fails at once.
	NoEntities bool
}

// Runs lists the runs that the route with these actions (its spec's,
// which it was compiled from) asks for when p matches it, in the order
// of its actions: one per recipient of a kind that has recipients, one
// per impacted entity passing the entity criteria of a per-entity Job
// (once per EntityKey), and one for any other action.
func (r *Route) Runs(actions []problemhookv1alpha1.Action, p *Problem) []Run {
	var out []Run
	for i := range actions {
		a := &actions[i]
		if to := actionkind.Of(a).Recipients(a); to != nil {
			for _, to := range to {
				out = append(out, Run{Action: a, Recipient: to})
			}
			continue
		}
		if a.Job == nil || !a.Job.PerImpactedEntity {
			out = append(out, Run{Action: a})
			continue
		}
		entities := r.Entities(p)
		if len(entities) == 0 {
			out = append(out, Run{Action: a, NoEntities: true})
			continue
		}
		seen := map[string]bool{}
		for j := range entities {
			if k := EntityKey(entities[j]); !seen[k] {
				seen[k] = true
				out = append(out, Run{Action: a, Entity: &entities[j]})
			}
		}
	}
	return out
}

// EntityKey names an impacted entity in a run: its id, or its name when
// the notification gave no id.
func EntityKey(e Entity) string {
	if e.ID != "" {
		return e.ID
	}
	return e.Name
}

// FiltersEntities reports whether the route runs per-entity actions only
// for some impacted entities (entityTypes, entityNames).
func (r *Route) FiltersEntities() bool { return r.filtersEntities() }

func (r *Route) filtersEntities() bool {
	return len(r.match.EntityTypes) > 0 || len(r.match.EntityNames) > 0
}

// entityMatches reports whether an entity passes both entity criteria: a
// route for HOST entities named web01 means one entity that is both.
func (r *Route) entityMatches(e Entity) bool {
	m := &r.match
	if len(m.EntityTypes) > 0 && !slices.ContainsFunc(m.EntityTypes, func(t string) bool { return strings.EqualFold(t, e.Type) }) {
		return false
	}
	return len(m.EntityNames) == 0 || slices.Contains(m.EntityNames, e.Name)
}

// impactKey is the form impact levels are compared in: the webhook says
// SERVICE where the API says SERVICES, so a trailing S does not count.
func impactKey(impact string) string {
	return strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(impact)), "S")
}

// hasTag reports whether tags hold want: "key:value" matches that tag, "key"
// matches the tag key or any key:value. Dynatrace prefixes some tags with a
// context, as in [Kubernetes]app:shop; a wanted tag without such a prefix
// matches the tag with it stripped.
func hasTag(tags []string, want string) bool {
	want = strings.TrimSpace(want)
	bare := !strings.HasPrefix(want, "[")
	keyOnly := !strings.Contains(want, ":")
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if bare {
			t = stripContext(t)
		}
		if t == want || keyOnly && strings.HasPrefix(t, want+":") {
			return true
		}
	}
	return false
}

// stripContext removes a tag's [context] prefix.
func stripContext(tag string) string {
	if !strings.HasPrefix(tag, "[") {
		return tag
	}
	if _, rest, ok := strings.Cut(tag, "]"); ok {
		return strings.TrimSpace(rest)
	}
	return tag
}
