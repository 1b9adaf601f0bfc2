// Package actionkind says, in one place, what each kind of IntegrationRoute
// action is, in the way Flux's notifier factory maps a provider to its
// constructor: its name in status, the Secrets it references (and what
// they must hold), its text templates, whether it stops when its problem
// resolves, and whether it is a message sent beside the reconcile or a
// Job. Each kind is one file here (job.go, twilio.go, dingtalk.go,
// http.go) and one entry of kinds; the reconcilers, route compilation,
// output masking and the generated admission policy read this registry
// instead of switching on the action's fields.
package actionkind

import (
	"fmt"
	"strings"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/notify"
)

// kinds are the kinds of action, in the order the API lists them.
var kinds = []*Kind{job, twilio, dingTalk, httpCall}

// Kind is one kind of action.
type Kind struct {
	// Type names the kind in status.actions[].type, Events and metrics
	// (problemhookv1alpha1.ActionType*).
	Type string
	// Field is the Action's field (its JSON name) that holds the kind's
	// spec, and the first element of its templates' and Secrets' fields.
	Field string
	// Message is true for a kind sent to an outside service beside the
	// reconcile, false for a Job.
	Message bool

	set           func(*problemhookv1alpha1.Action) bool
	stopOnResolve func(*problemhookv1alpha1.Action) *bool
	secrets       []secretField
	templates     []templateField
	recipients    func(*problemhookv1alpha1.Action) []string
	// prepare makes a message kind's run ready to send.
	prepare func(Input, map[string]map[string][]byte) (Message, error)
	// sentLine says in status what a successful send did.
	sentLine func(recipient string, res notify.Result) string
}

// secretField is one Secret reference of a kind.
type secretField struct {
	// field is the reference's path below the action: "dingtalk.urlSecretRef".
	field string
	// ref returns the Secret's name and the keys the action reads (none:
	// every key), or false when the action leaves the reference out.
	ref func(*problemhookv1alpha1.Action) (name string, keys []string, ok bool)
	// validate checks the values beyond their presence, or is nil.
	validate func(map[string][]byte) error
}

// templateField is one text template of a kind.
type templateField struct {
	// field is the template's path below the action: "twilio.body".
	field string
	text  func(*problemhookv1alpha1.Action) string
	// secrets is the field of the Secret whose keys the template may read
	// with {{ secret "key" }}, or "".
	secrets string
}

// All returns every kind, in the order the API lists them.
func All() []*Kind { return kinds }

// Of returns the kind of action a. The API holds exactly one kind per
// action (a CRD validation rule); an action with none is a Job, the
// kind the first routes had.
func Of(a *problemhookv1alpha1.Action) *Kind {
	for _, k := range kinds {
		if k.set(a) {
			return k
		}
	}
	return job
}

// ByType returns the kind named typ in status, or nil.
func ByType(typ string) *Kind {
	for _, k := range kinds {
		if k.Type == typ {
			return k
		}
	}
	return nil
}

// StopsOnResolve reports whether a's runs stop when the problem resolves:
// its stopOnResolve, true when unset.
func (k *Kind) StopsOnResolve(a *problemhookv1alpha1.Action) bool {
	if s := k.stopOnResolve(a); s != nil {
		return *s
	}
	return true
}

// IsMessage reports whether runs of the type named in status are messages
// sent beside the reconcile; false for Jobs, and for a type this version
// does not know.
func IsMessage(typ string) bool {
	k := ByType(typ)
	return k != nil && k.Message
}

// SentLine says in a run's status what a successful send to recipient
// did: the service's own words, unless the kind says more.
func (k *Kind) SentLine(recipient string, res notify.Result) string {
	if k.sentLine != nil {
		return k.sentLine(recipient, res)
	}
	return res.Detail
}

// Recipients returns the recipients a is sent to one run each (a Twilio
// action's numbers), or nil when it has one run, or one per entity.
func (k *Kind) Recipients(a *problemhookv1alpha1.Action) []string {
	if k.recipients == nil {
		return nil
	}
	return k.recipients(a)
}

// SecretRef is one Secret an action references.
type SecretRef struct {
	// Field is the reference's path below the action, e.g.
	// "dingtalk.urlSecretRef"; prefix it with the action's path.
	Field string
	// Name is the Secret's name, in the route's namespace.
	Name string
	// Keys are the keys the action reads, defaults applied; none means
	// every key of the Secret (HTTP headers, a body's secrets).
	Keys []string
	// Validate checks what the keys hold beyond their presence, or is
	// nil. Its error names the key, not the Secret.
	Validate func(map[string][]byte) error
}

// SecretRefs lists the Secrets a references, in the order of its fields.
func (k *Kind) SecretRefs(a *problemhookv1alpha1.Action) []SecretRef {
	var out []SecretRef
	for _, s := range k.secrets {
		if name, keys, ok := s.ref(a); ok {
			out = append(out, SecretRef{Field: s.field, Name: name, Keys: keys, Validate: s.validate})
		}
	}
	return out
}

// SecretNames lists the names of the Secrets a route's actions reference.
func SecretNames(spec *problemhookv1alpha1.IntegrationRouteSpec) []string {
	var names []string
	for i := range spec.Actions {
		a := &spec.Actions[i]
		for _, ref := range Of(a).SecretRefs(a) {
			names = append(names, ref.Name)
		}
	}
	return names
}

// Template is one text template of an action.
type Template struct {
	// Field is the template's path below the action, e.g. "http.body".
	Field string
	// Text is the template, "" when the action leaves it out.
	Text string
	// Secrets is the Secret whose keys the template reads with
	// {{ secret "key" }}, or nil.
	Secrets *SecretRef
}

// Templates lists a's text templates, in the order of its fields.
func (k *Kind) Templates(a *problemhookv1alpha1.Action) []Template {
	var refs map[string]SecretRef
	out := make([]Template, 0, len(k.templates))
	for _, t := range k.templates {
		tpl := Template{Field: t.field, Text: t.text(a)}
		if t.secrets != "" {
			if refs == nil {
				refs = map[string]SecretRef{}
				for _, r := range k.SecretRefs(a) {
					refs[r.Field] = r
				}
			}
			if r, ok := refs[t.secrets]; ok {
				tpl.Secrets = &r
			}
		}
		out = append(out, tpl)
	}
	return out
}

// HasTemplate reports whether field (e.g. "http.body") is a template of
// the kind.
func (k *Kind) HasTemplate(field string) bool {
	for _, t := range k.templates {
		if t.field == field {
			return true
		}
	}
	return false
}

// CELSecretNames is a CEL expression over an IntegrationRoute (object)
// that lists the names of the Secrets its actions reference, as
// SecretNames does: the admission policy asks the authorizer whether the
// route's author may get each of them.
func CELSecretNames() string {
	var parts []string
	for _, k := range kinds {
		for _, s := range k.secrets {
			path := "a." + s.field
			guard := "has(a." + k.Field + ")"
			// has() of each optional field on the way down.
			elems := strings.Split(s.field, ".")
			for i := 2; i <= len(elems); i++ {
				guard += " && has(a." + strings.Join(elems[:i], ".") + ")"
			}
			parts = append(parts, fmt.Sprintf("object.spec.actions.filter(a, %s).map(a, %s.name)", guard, path))
		}
	}
	return strings.Join(parts, " +\n      ")
}

func keyOr(ref problemhookv1alpha1.SecretKeyReference, def string) []string {
	if ref.Key != "" {
		return []string{ref.Key}
	}
	return []string{def}
}

// only is the value of a Secret read for one key.
func only(values map[string][]byte) []byte {
	for _, v := range values {
		return v
	}
	return nil
}
