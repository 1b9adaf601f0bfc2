package routing_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	. "github.com/onsi/gomega"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/routing"
)

// compileActions compiles a route with these actions and no match.
func compileActions(actions ...problemhookv1alpha1.Action) (*routing.Route, error) {
	return routing.Compile(&problemhookv1alpha1.IntegrationRouteSpec{Actions: actions})
}

func TestCompileTemplateErrors(t *testing.T) {
	tests := []struct {
		name    string
		actions []problemhookv1alpha1.Action
		field   string
		want    string
	}{
		{
			name:    "twilio body does not parse",
			actions: []problemhookv1alpha1.Action{jobAction("run"), jobAction("run2"), twilioAction("Problem {{.DisplayID")},
			field:   "spec.actions[2].twilio.body", want: "unclosed action",
		},
		{
			name:    "dingtalk title does not parse",
			actions: []problemhookv1alpha1.Action{dingTalkAction("{{if .Title}}", "{{.Message}}")},
			field:   "spec.actions[0].dingtalk.title", want: "unexpected EOF",
		},
		{
			name:    "dingtalk text calls an unknown function",
			actions: []problemhookv1alpha1.Action{jobAction("run"), dingTalkAction("{{.Title}}", "{{shell .Title}}")},
			field:   "spec.actions[1].dingtalk.text", want: `function "shell" not defined`,
		},
		{
			name:    "http body names a field the problem lacks",
			actions: []problemhookv1alpha1.Action{httpAction(`{"title": {{json .Titel}}}`)},
			field:   "spec.actions[0].http.body", want: "http.body:1:17: Problem has no field Titel",
		},
		{
			name:    "a field an entity lacks, inside range",
			actions: []problemhookv1alpha1.Action{twilioAction("{{range .ImpactedEntities}}{{.Title}}{{end}}")},
			field:   "spec.actions[0].twilio.body", want: "Entity has no field Title",
		},
		{
			name:    "a field of a string",
			actions: []problemhookv1alpha1.Action{twilioAction("{{with .Title}}{{.Text}}{{end}}")},
			field:   "spec.actions[0].twilio.body", want: "string has no field Text",
		},
		{
			name:    "a field of the root through $",
			actions: []problemhookv1alpha1.Action{twilioAction("{{range .Tags}}{{$.Tag}}{{end}}")},
			field:   "spec.actions[0].twilio.body", want: "Problem has no field Tag",
		},
		{
			// The field check cannot see into {{define}}; the sample render does.
			name:    "a field the problem lacks, in a defined template",
			actions: []problemhookv1alpha1.Action{twilioAction(`{{define "x"}}{{.Anything}}{{end}}{{template "x" .}}`)},
			field:   "spec.actions[0].twilio.body", want: `rendering it for a sample problem: template: twilio.body:1:16: executing "x" at <.Anything>: can't evaluate field Anything in type *routing.Problem`,
		},
		{
			name:    "a template that fails for any problem",
			actions: []problemhookv1alpha1.Action{twilioAction(`{{index .Tags 99}}`)},
			field:   "spec.actions[0].twilio.body", want: "rendering it for a sample problem: template: twilio.body:1:2: executing \"twilio.body\" at <index .Tags 99>: error calling index: index out of range: 99",
		},
		{
			name:    "range over a huge number",
			actions: []problemhookv1alpha1.Action{twilioAction("{{range 9223372036854775807}}{{end}}")},
			field:   "spec.actions[0].twilio.body", want: "the template loops or calls templates more than 10000 times",
		},
		{
			name:    "nested ranges that multiply",
			actions: []problemhookv1alpha1.Action{httpAction("{{range 200}}{{range 200}}{{range 200}}{{end}}{{end}}{{end}}")},
			field:   "spec.actions[0].http.body", want: "the template loops or calls templates more than 10000 times",
		},
		{
			name:    "a template that calls itself",
			actions: []problemhookv1alpha1.Action{dingTalkAction("", `{{define "a"}}{{template "a" .}}{{template "a" .}}{{end}}{{template "a" .}}`)},
			field:   "spec.actions[0].dingtalk.text", want: "the template loops or calls templates more than 10000 times",
		},
		{
			name:    "printf padding to a megabyte",
			actions: []problemhookv1alpha1.Action{twilioAction(`{{printf "%999999d" 1}}`)},
			field:   "spec.actions[0].twilio.body", want: `printf: a width or precision in "%999999d" is larger than 256`,
		},
		{
			name:    "printf precision past the bound",
			actions: []problemhookv1alpha1.Action{twilioAction(`{{printf "%.1000f" 1.0}}`)},
			field:   "spec.actions[0].twilio.body", want: `printf: a width or precision in "%.1000f" is larger than 256`,
		},
		{
			name:    "printf width from an argument",
			actions: []problemhookv1alpha1.Action{twilioAction(`{{printf "%*d" 999999 1}}`)},
			field:   "spec.actions[0].twilio.body", want: `printf: "%*d" takes a width or precision from an argument (*), which templates may not`,
		},
		{
			name:    "the budget's check cannot be called by name",
			actions: []problemhookv1alpha1.Action{twilioAction(`{{_problemhookStep}}`)},
			field:   "spec.actions[0].twilio.body", want: `function "_problemhookStep" not defined`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := compileActions(tt.actions...)
			var fe *routing.FieldError
			g.Expect(errors.As(err, &fe)).To(BeTrue(), "error %v", err)
			g.Expect(fe.Field).To(Equal(tt.field))
			g.Expect(fe.Reason).To(Equal(problemhookv1alpha1.ReasonInvalidTemplate))
			g.Expect(err.Error()).To(HavePrefix(tt.field + ": "))
			g.Expect(err.Error()).To(ContainSubstring(tt.want))
		})
	}
}

func TestCompileReportsEveryField(t *testing.T) {
	g := NewWithT(t)
	bad := jobAction("run")
	bad.Job.Template.Raw = []byte(`{"spec":{"template":{"spec":{"initContainer":[]}}}}`)
	_, err := routing.Compile(&problemhookv1alpha1.IntegrationRouteSpec{
		Match: problemhookv1alpha1.RouteMatch{Expression: `problem.titel == ""`},
		Actions: []problemhookv1alpha1.Action{
			bad,
			twilioAction("{{.DisplayID"),
			dingTalkAction("{{.Title}}", "{{end}}"),
			httpAction(`{{json .Title}}`),
		},
	})
	type fieldReason struct{ Field, Reason string }
	var got []fieldReason
	for _, fe := range routing.FieldErrors(err) {
		got = append(got, fieldReason{fe.Field, fe.Reason})
	}
	g.Expect(got).To(Equal([]fieldReason{
		{"spec.match.expression", problemhookv1alpha1.ReasonInvalidExpression},
		{"spec.actions[0].job.template", problemhookv1alpha1.ReasonInvalidJobTemplate},
		{"spec.actions[1].twilio.body", problemhookv1alpha1.ReasonInvalidTemplate},
		{"spec.actions[2].dingtalk.text", problemhookv1alpha1.ReasonInvalidTemplate},
	}))
}

func TestCompileValidTemplates(t *testing.T) {
	valid := []string{
		"{{range .ImpactedEntities}}{{.Name}} ({{.Type}}, {{$.DisplayID}}){{end}}",
		"{{range $i, $e := .Tags}}{{if $i}}, {{end}}{{$e}}{{end}}",
		`{{with .Title}}{{.}}{{else}}{{.DisplayID}}{{end}}`,
		`{{.ReceivedAt.Format "2006-01-02T15:04:05Z07:00"}} {{.ReceivedAt.Unix}}`,
		`{{len .Tags}} {{index .Tags 0}} {{printf "%q" .Title}}`,
		`{{define "x"}}{{.Title}}{{end}}{{template "x" .}}`,
		`{{printf "%-20s|%8.3f|%03d" .Title 1.5 7}}`,
		"{{range .ImpactedEntities}}{{range $.Tags}}{{range $.ManagementZones}}.{{end}}{{end}}{{end}}",
		`{{/* a comment */}}{{- .Title -}}`,
		`{{(index .ImpactedEntities 0).Name}}`,
	}
	for _, text := range valid {
		t.Run(text, func(t *testing.T) {
			g := NewWithT(t)
			_, err := compileActions(twilioAction(text))
			g.Expect(err).NotTo(HaveOccurred())
		})
	}
}

func TestRender(t *testing.T) {
	hostile := "$(rm -rf /); `id` && echo \"quoted\" 'single' | tee >/tmp/x <y; ${HOME} \\ back\nnew line\ttab * ? ~ # ! %"
	tests := []struct {
		name   string
		action problemhookv1alpha1.Action
		field  string
		modify func(*routing.Problem)
		want   string
	}{
		{
			name:   "the sample SMS",
			action: twilioAction("Dynatrace notification - {{.Impact}} problem ({{.DisplayID}}) {{.State}}. {{.URL}}"),
			field:  "twilio.body",
			want:   "Dynatrace notification - INFRASTRUCTURE problem (1234) OPEN. https://abc12345.live.dynatrace.com/#problems/problemdetails;pid=-6150203450926486413_1669823466223V2",
		},
		{
			name:   "shell metacharacters, quotes and newlines byte for byte",
			action: twilioAction("[{{.Title}}]"),
			field:  "twilio.body",
			modify: func(p *routing.Problem) { p.Title = hostile },
			want:   "[" + hostile + "]",
		},
		{
			name:   "json escapes",
			action: httpAction(`{"title": {{json .Title}}, "tags": {{json .Tags}}, "test": {{json .Test}}}`),
			field:  "http.body",
			modify: func(p *routing.Problem) { p.Title = "a \"b\"\n<c> & \\d"; p.Tags = []string{"x"} },
			want:   `{"title": "a \"b\"\n<c> & \\d", "tags": ["x"], "test": false}`,
		},
		{
			name:   "json of an entity",
			action: httpAction(`{{json (index .ImpactedEntities 0)}}`),
			field:  "http.body",
			want:   `{"id":"HOST-1","name":"web01","type":"HOST"}`,
		},
		{
			name:   "join, upper, lower",
			action: dingTalkAction("{{.Severity | lower}}", "{{.Tags | join \", \"}} / {{join \";\" .ManagementZones | upper}}"),
			field:  "dingtalk.text",
			want:   "env:prod, [Kubernetes]app:shop, team, owner:ops:night / SHOP;PROD",
		},
		{
			name:   "dingtalk title",
			action: dingTalkAction("{{.Severity | lower}}", "{{.Title}}"),
			field:  "dingtalk.title",
			want:   "resource_contention",
		},
		{
			name:   "dingtalk markdown text",
			action: dingTalkAction("{{.Title}}", "#### {{.Title}}\n\n{{.Message}}"),
			field:  "dingtalk.text",
			modify: func(p *routing.Problem) { p.Message = "line 1\nline 2" },
			want:   "#### CPU saturation\n\nline 1\nline 2",
		},
		{
			name:   "an empty field renders empty",
			action: dingTalkAction("", "{{.Title}}"),
			field:  "dingtalk.title",
			want:   "",
		},
		{
			name:   "an empty http body renders empty",
			action: httpAction(""),
			field:  "http.body",
			want:   "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r, err := compileActions(jobAction("run"), tt.action)
			g.Expect(err).NotTo(HaveOccurred())
			p := problem()
			if tt.modify != nil {
				tt.modify(p)
			}
			got, err := r.Render(tt.action.Name, tt.field, p)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect([]byte(got)).To(Equal([]byte(tt.want)))
			if tt.action.HTTP != nil && tt.want != "" {
				g.Expect(json.Valid([]byte(got))).To(BeTrue())
			}
		})
	}
}

func TestRenderJSONRoundTrips(t *testing.T) {
	g := NewWithT(t)
	r, err := compileActions(httpAction(`{"title": {{json .Title}}, "entities": {{json .ImpactedEntities}}}`))
	g.Expect(err).NotTo(HaveOccurred())
	p := problem()
	p.Title = "\"}, \"injected\": true, \"x\": {\"\u2028\x01"
	got, err := r.Render("itsm", "http.body", p)
	g.Expect(err).NotTo(HaveOccurred())
	var body struct {
		Title    string           `json:"title"`
		Entities []routing.Entity `json:"entities"`
		Injected *bool            `json:"injected"`
	}
	g.Expect(json.Unmarshal([]byte(got), &body)).To(Succeed())
	g.Expect(body.Title).To(Equal(p.Title))
	g.Expect(body.Entities).To(Equal(p.ImpactedEntities))
	g.Expect(body.Injected).To(BeNil())
}

func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name   string
		action problemhookv1alpha1.Action
		render string
		field  string
		modify func(*routing.Problem)
		want   string
	}{
		{name: "no such action", action: twilioAction("{{.Title}}"), render: "chat", field: "twilio.body", want: `route has no action "chat"`},
		{name: "field of another kind", action: twilioAction("{{.Title}}"), render: "sms", field: "http.body", want: "no such template"},
		{name: "no such field", action: dingTalkAction("", "{{.Title}}"), render: "chat", field: "dingtalk.body", want: "no such template"},
		{name: "job action", action: jobAction("run"), render: "run", field: "job.template", want: "no such template"},
		{
			// The sample problem has three tags; this one has one.
			name: "index out of range at render time", action: twilioAction("{{index .Tags 2}}"), render: "sms", field: "twilio.body",
			modify: func(p *routing.Problem) { p.Tags = p.Tags[:1] },
			want:   `rendering twilio.body of action "sms": template: twilio.body:1:2: executing "twilio.body" at <index .Tags 2>: error calling index: index out of range: 2`,
		},
		{
			// Within its bound for the sample's two entities, past it for this problem's 200.
			name: "loops past the budget at render time", action: twilioAction("{{range .ImpactedEntities}}{{range $.ImpactedEntities}}{{end}}{{end}}"), render: "sms", field: "twilio.body",
			modify: func(p *routing.Problem) {
				for range 200 {
					p.ImpactedEntities = append(p.ImpactedEntities, routing.Entity{ID: "HOST-1"})
				}
			},
			want: `rendering twilio.body of action "sms": the template loops or calls templates more than 10000 times`,
		},
		{
			name: "output too long", action: httpAction("{{range .Tags}}{{$.Message}}{{end}}"), render: "itsm", field: "http.body",
			modify: func(p *routing.Problem) { p.Message = strings.Repeat("x", 20<<10) },
			want:   "rendered text exceeds 65536 bytes",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			r, err := compileActions(tt.action)
			g.Expect(err).NotTo(HaveOccurred())
			p := problem()
			if tt.modify != nil {
				tt.modify(p)
			}
			got, err := r.Render(tt.render, tt.field, p)
			g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
			g.Expect(got).To(BeEmpty())
		})
	}
}

func TestRenderBound(t *testing.T) {
	g := NewWithT(t)
	r, err := compileActions(httpAction("{{.Message}}"))
	g.Expect(err).NotTo(HaveOccurred())
	p := problem()
	p.Message = strings.Repeat("x", routing.MaxRenderedBytes)
	got, err := r.Render("itsm", "http.body", p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(HaveLen(routing.MaxRenderedBytes))
	p.Message += "x"
	_, err = r.Render("itsm", "http.body", p)
	g.Expect(err).To(HaveOccurred())
}

// An HTTP action's body reads its secretRef with secret, which no other
// template can; its path renders with pathEscape.
func TestHTTPSecretsAndPath(t *testing.T) {
	g := NewWithT(t)
	a := httpAction(`{"routing_key":{{ secret "routing_key" | json }},"dedup_key":{{ json .ProblemID }}}`)
	_, err := compileActions(a)
	g.Expect(err).To(MatchError(ContainSubstring(`secret "routing_key": only an HTTP action's body can read secrets, from its http.secretRef`)),
		"without a secretRef, the template is refused when the route is checked")

	a.HTTP.SecretRef = &problemhookv1alpha1.LocalObjectReference{Name: "pagerduty"}
	a.HTTP.Path = "/v2/alerts/{{ .ProblemID | pathEscape }}/close"
	r, err := compileActions(a)
	g.Expect(err).NotTo(HaveOccurred())
	p := &routing.Problem{ProblemID: "-1/../2 x", Tags: []string{}}
	body, err := r.RenderWithSecrets(a.Name, "http.body", p, routing.Secrets{"routing_key": []byte("R0UT1NG")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(body).To(Equal(`{"routing_key":"R0UT1NG","dedup_key":"-1/../2 x"}`))
	_, err = r.RenderWithSecrets(a.Name, "http.body", p, routing.Secrets{"other": []byte("x")})
	g.Expect(err).To(MatchError(ContainSubstring(`secret "routing_key": http.secretRef has no such key`)))
	body, err = r.RenderSecretsAs(a.Name, "http.body", p, func(key string) string { return "<secret:pagerduty/" + key + ">" })
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(body).To(Equal(`{"routing_key":"<secret:pagerduty/routing_key>","dedup_key":"-1/../2 x"}`))
	path, err := r.Render(a.Name, "http.path", p)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(path).To(Equal("/v2/alerts/-1%2F..%2F2%20x/close"))

	sms := twilioAction(`{{ secret "authToken" }}`)
	_, err = compileActions(sms)
	g.Expect(err).To(MatchError(ContainSubstring("spec.actions[0].twilio.body")))
}

func TestTruncate(t *testing.T) {
	g := NewWithT(t)
	r, err := compileActions(httpAction(`{{ .Title | truncate 3 }}|{{ "ab" | truncate 5 }}|{{ "äöüß" | truncate 2 }}|{{ "x" | truncate 0 }}`))
	g.Expect(err).NotTo(HaveOccurred())
	out, err := r.Render("itsm", "http.body", &routing.Problem{Title: "CPU saturated", Tags: []string{}})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(Equal("CPU|ab|äö|"))
}
