package routing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"strings"
	"text/template"
	"text/template/parse"
)

// MaxRenderedBytes bounds what a template renders; Render fails beyond it.
const MaxRenderedBytes = 64 << 10

// errTooLong is what the bounded writer returns past MaxRenderedBytes.
var errTooLong = fmt.Errorf("rendered text exceeds %d bytes", MaxRenderedBytes)

// funcs are the functions templates can call besides text/template's own:
//
//	json   encodes a value as JSON, so {"title": {{json .Title}}} is a safe HTTP body
//	join   joins a list of strings with a separator, separator first, so
//	       that it pipes: {{.Tags | join ", "}}
//	upper  upper-cases a string
//	lower  lower-cases a string
//	pathEscape  escapes a string to be one element of a URL path
//	truncate    keeps the first n characters of a string: {{.Title | truncate 130}}
//	secret reads a key of an HTTP action's secretRef: {{ secret "routing_key" }}
//
// Templates are parsed with these; each render calls them, and
// text/template's builtins that build strings, through its budget
// (renderBudget.funcMap), whose printf also bounds its widths.
var funcs = template.FuncMap{
	"json":       jsonString,
	"join":       joinStrings,
	"upper":      strings.ToUpper,
	"lower":      strings.ToLower,
	"pathEscape": url.PathEscape,
	"truncate":   truncateRunes,
	"secret":     noSecrets,
}

// joinStrings is strings.Join with the separator first, so that it pipes.
func joinStrings(sep string, list []string) string { return strings.Join(list, sep) }

// truncateRunes keeps the first n characters of s: a service's limit on
// a field is in characters. It only ever shortens.
func truncateRunes(n int, s string) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

// noSecrets is secret where the action has no secretRef to read.
func noSecrets(key string) (string, error) {
	return "", fmt.Errorf("secret %q: only an HTTP action's body can read secrets, from its http.secretRef", key)
}

// Secrets are the values {{ secret "key" }} reads, by key.
type Secrets map[string][]byte

func (s Secrets) secret(key string) (string, error) {
	v, ok := s[key]
	if !ok {
		return "", fmt.Errorf("secret %q: http.secretRef has no such key", key)
	}
	return string(v), nil
}

// sampleSecrets stands in for any Secret when a template is tried on the
// sample problem: a key that is missing is reported when the route is
// checked against its Secret, not here.
type sampleSecrets struct{}

func (sampleSecrets) secret(key string) (string, error) { return "sample-" + key, nil }

func jsonString(v any) (string, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", fmt.Errorf("encoding JSON: %w", err)
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// problemType is the type of dot in a template.
var problemType = reflect.TypeFor[*Problem]()

// parseTemplate parses a template named after its field (twilio.body) and
// checks that the fields it reads from the problem exist, so that
// {{.Titel}} fails when the route is applied, not when a problem arrives.
func parseTemplate(name, text string) (*template.Template, error) {
	t, err := template.New(name).Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, err
	}
	if t.Tree == nil {
		return t, nil // only {{define}}s: it renders nothing
	}
	c := &fieldChecker{tree: t.Tree}
	c.walk(t.Root, problemType)
	if c.err != nil {
		return nil, c.err
	}
	instrument(t)
	return t, nil
}

// Render renders the template of the field ("twilio.body", "dingtalk.title",
// "dingtalk.text" or "http.body") of the route's action named action, for a
// problem. It returns "" when the field is empty, and an error when the action
// has no such field, when the template fails, or when it passes a bound of
// its budget: MaxRenderedBytes, MaxRenderValueBytes, MaxRenderSteps,
// MaxRenderTime.
func (r *Route) Render(action, field string, p *Problem) (string, error) {
	return r.RenderWithSecrets(action, field, p, nil)
}

// RenderWithSecrets is Render for a template that may read secrets
// (http.body with an http.secretRef).
func (r *Route) RenderWithSecrets(action, field string, p *Problem, secrets Secrets) (string, error) {
	var secret func(string) (string, error)
	if secrets != nil {
		secret = secrets.secret
	}
	return r.render(action, field, p, secret)
}

// RenderSecretsAs is Render for a template that may read secrets, with
// each {{ secret "key" }} written as placeholder(key): what a route does
// can be shown without reading its Secrets.
func (r *Route) RenderSecretsAs(action, field string, p *Problem, placeholder func(key string) string) (string, error) {
	return r.render(action, field, p, func(key string) (string, error) { return placeholder(key), nil })
}

func (r *Route) render(action, field string, p *Problem, secret func(string) (string, error)) (string, error) {
	kind, ok := r.kinds[action]
	if !ok {
		return "", fmt.Errorf("rendering %s: route has no action %q", field, action)
	}
	if !kind.HasTemplate(field) {
		return "", fmt.Errorf("rendering %s: action %q is a %s action with no such template", field, action, kind.Field)
	}
	t, ok := r.templates[templateKey(action, field)]
	if !ok {
		return "", nil
	}
	out, err := execute(t, p, secret)
	if err != nil {
		return "", fmt.Errorf("rendering %s of action %q: %w", field, action, err)
	}
	return out, nil
}

func templateKey(action, field string) string {
	return action + "/" + field
}

// boundedWriter is a buffer that refuses to grow past max.
type boundedWriter struct {
	buf bytes.Buffer
	max int
}

func (w *boundedWriter) Write(b []byte) (int, error) {
	if w.buf.Len()+len(b) > w.max {
		return 0, errTooLong
	}
	return w.buf.Write(b)
}

// fieldChecker walks a template and records the first field it reads from a
// value of known type that the type lacks. Where it cannot know the type of
// dot (inside {{with}} over a call, in {{define}}d templates, through
// variables other than $), it checks nothing.
type fieldChecker struct {
	tree *parse.Tree
	err  error
}

func (c *fieldChecker) walk(node parse.Node, dot reflect.Type) {
	if c.err != nil || node == nil {
		return
	}
	switch n := node.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, child := range n.Nodes {
			c.walk(child, dot)
		}
	case *parse.ActionNode:
		c.pipe(n.Pipe, dot)
	case *parse.IfNode:
		c.pipe(n.Pipe, dot)
		c.walk(n.List, dot)
		c.walk(n.ElseList, dot)
	case *parse.RangeNode:
		c.pipe(n.Pipe, dot)
		c.walk(n.List, elemType(c.pipeType(n.Pipe, dot)))
		c.walk(n.ElseList, dot)
	case *parse.WithNode:
		c.pipe(n.Pipe, dot)
		c.walk(n.List, c.pipeType(n.Pipe, dot))
		c.walk(n.ElseList, dot)
	case *parse.TemplateNode:
		c.pipe(n.Pipe, dot)
	}
}

func (c *fieldChecker) pipe(p *parse.PipeNode, dot reflect.Type) {
	if p == nil {
		return
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			c.arg(arg, dot)
		}
	}
}

func (c *fieldChecker) arg(arg parse.Node, dot reflect.Type) {
	switch a := arg.(type) {
	case *parse.FieldNode:
		c.resolve(a, dot, a.Ident)
	case *parse.VariableNode:
		if a.Ident[0] == "$" {
			c.resolve(a, problemType, a.Ident[1:])
		}
	case *parse.PipeNode:
		c.pipe(a, dot)
	case *parse.ChainNode:
		c.arg(a.Node, dot)
	}
}

// pipeType is the type of a pipeline that is a lone field of dot, else nil.
func (c *fieldChecker) pipeType(p *parse.PipeNode, dot reflect.Type) reflect.Type {
	if len(p.Cmds) != 1 || len(p.Cmds[0].Args) != 1 {
		return nil
	}
	switch a := p.Cmds[0].Args[0].(type) {
	case *parse.DotNode:
		return dot
	case *parse.FieldNode:
		return c.resolve(a, dot, a.Ident)
	case *parse.VariableNode:
		if a.Ident[0] == "$" {
			return c.resolve(a, problemType, a.Ident[1:])
		}
	}
	return nil
}

// resolve follows a chain of field or method names from t, recording an
// error at the first that t lacks, and returns the chain's type or nil.
func (c *fieldChecker) resolve(node parse.Node, t reflect.Type, idents []string) reflect.Type {
	for _, name := range idents {
		if t == nil {
			return nil
		}
		ptr := t
		if t.Kind() != reflect.Pointer {
			ptr = reflect.PointerTo(t)
		}
		if m, ok := ptr.MethodByName(name); ok {
			if m.Type.NumOut() == 0 {
				return nil
			}
			t = m.Type.Out(0)
			continue
		}
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Interface, reflect.Map:
			return nil
		case reflect.Struct:
			if f, ok := t.FieldByName(name); ok && f.IsExported() {
				t = f.Type
				continue
			}
		}
		if c.err == nil {
			location, _ := c.tree.ErrorContext(node)
			c.err = fmt.Errorf("template: %s: %s has no field %s", location, typeName(t), name)
		}
		return nil
	}
	return t
}

// typeName names a type for users: Problem, Entity, string.
func typeName(t reflect.Type) string {
	if t.Name() != "" {
		return t.Name()
	}
	return t.String()
}

// elemType is the type of the elements a range over t yields, or nil.
func elemType(t reflect.Type) reflect.Type {
	if t == nil {
		return nil
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		return t.Elem()
	}
	return nil
}
