package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/cli"
	"github.com/problemhook/problemhook/internal/payload"
)

// The sample routes and payloads, from this package's directory.
const (
	samples        = "../../config/samples"
	paging         = "../../config/samples/paging"
	dynatraceRich  = "../payload/testdata/dynatrace-rich.json"
	dynatraceTest  = "../payload/testdata/dynatrace-test.json"
	guanceWarning  = "../payload/testdata/guance-warning.json"
	workflowClosed = "../payload/testdata/workflow-closed.json"
)

// routesTest runs `manager routes test` with args and returns its exit
// code, stdout and stderr.
func routesTest(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), append([]string{"routes", "test"}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// routesTestJSON runs `routes test -o json`, expects it to succeed, and
// decodes its report.
func routesTestJSON(t *testing.T, args ...string) cli.RoutesReport {
	t.Helper()
	code, stdout, stderr := routesTest(t, append(args, "-o", "json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var report cli.RoutesReport
	if err := json.Unmarshal([]byte(stdout), &report); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	return report
}

// byName returns the report's routes by name.
func byName(r cli.RoutesReport) map[string]cli.RouteResult {
	out := map[string]cli.RouteResult{}
	for _, rr := range r.Routes {
		out[rr.Name] = rr
	}
	return out
}

// writeFile writes text to name under dir and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// noKubeconfig makes sure nothing can reach a cluster: the test passes
// only if routes test reads no kubeconfig.
func noKubeconfig(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "absent"))
	t.Setenv("HOME", t.TempDir())
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
}

// Every sample route against a sample payload of each format.
func TestRoutesTestSamples(t *testing.T) {
	noKubeconfig(t)
	samplePaths := []string{"--routes", samples} // the directory holds paging/ too

	t.Run("Dynatrace", func(t *testing.T) {
		g := NewWithT(t)
		r := routesTestJSON(t, append(samplePaths, "--payload", dynatraceRich, "--format", "Dynatrace")...)
		g.Expect(r.Problem.Target).To(Equal("dynatrace"))
		g.Expect(r.Problem.Namespace).To(Equal("problemhook-demo"))
		g.Expect(r.Routes).To(HaveLen(7))
		names := []string{}
		for _, rr := range r.Routes {
			names = append(names, rr.Name)
			g.Expect(rr.Ready).To(BeTrue(), rr.Name)
		}
		g.Expect(names).To(Equal([]string{"guance-to-dingtalk", "legacy-incident", "opsgenie", "pagerduty", "restart-ladder", "slack", "teams"}))
		routes := byName(r)
		g.Expect(routes["guance-to-dingtalk"].Reason).To(Equal(`spec.targets [guance] does not list the event's target "dynatrace"`))
		g.Expect(routes["legacy-incident"].Reason).To(Equal(
			`spec.match.severities [AVAILABILITY, ERROR, RESOURCE_CONTENTION] does not hold the problem's severity "PERFORMANCE"`))
		g.Expect(routes["restart-ladder"].Reason).To(Equal(
			`spec.match.tags: the problem has no tag "remediation:restart" (its tags: [env:prod, team:shop, frontend])`))
		for _, name := range []string{"opsgenie", "pagerduty", "slack", "teams"} {
			g.Expect(routes[name].Matched).To(BeTrue(), name)
			g.Expect(routes[name].Actions).To(HaveLen(1), name)
			g.Expect(routes[name].Actions[0].Kind).To(Equal("HTTP"))
			g.Expect(routes[name].Actions[0].Runs).To(HaveLen(1), name)
		}
		opsgenie := routes["opsgenie"].Actions[0].Runs[0].HTTP
		g.Expect(opsgenie.Method).To(Equal("POST"))
		g.Expect(opsgenie.URL).To(Equal("https://api.opsgenie.com/v2/alerts"))
		g.Expect(opsgenie.Headers).To(Equal("<secret:opsgenie/*>"))
		g.Expect(opsgenie.Body).To(ContainSubstring(`"message": "221194163 Response time degradation"`))
		g.Expect(opsgenie.Body).To(ContainSubstring(`"priority": "P3"`))
		pagerduty := routes["pagerduty"].Actions[0].Runs[0].HTTP
		g.Expect(pagerduty.URL).To(Equal("https://events.pagerduty.com/v2/enqueue"))
		g.Expect(pagerduty.Body).To(ContainSubstring(`{"routing_key": "<secret:pagerduty/routing_key>",`))
		g.Expect(pagerduty.Body).To(ContainSubstring(`"event_action": "trigger"`))
		g.Expect(pagerduty.Body).To(ContainSubstring(`"custom_details": {"impact": "SERVICE", "tags": ["env:prod","team:shop","frontend"]}`))
		var body map[string]any
		g.Expect(json.Unmarshal([]byte(pagerduty.Body), &body)).To(Succeed(), "the body is JSON")
		slack := routes["slack"].Actions[0].Runs[0].HTTP
		g.Expect(slack.URL).To(Equal("<secret:slack/url>"))
		g.Expect(slack.Body).To(HavePrefix(`{"text": ":rotating_light: OPEN 221194163: Response time degradation <https://abc12345.live`))
		g.Expect(routes["teams"].Actions[0].Runs[0].HTTP.Body).To(ContainSubstring(`"text": "Severity PERFORMANCE, impact SERVICE"`))
	})

	// The remediation ladder's message tells the on-call the command that
	// approves its last step, rendered for the event.
	t.Run("Dynatrace ladder", func(t *testing.T) {
		g := NewWithT(t)
		rich, err := os.ReadFile(dynatraceRich)
		g.Expect(err).NotTo(HaveOccurred())
		tagged := writeFile(t, t.TempDir(), "tagged.json",
			strings.Replace(string(rich), `"Tags": "env:prod, team:shop, frontend"`, `"Tags": "env:prod, remediation:restart"`, 1))
		r := routesTestJSON(t, "--routes", filepath.Join(samples, "ladder.yaml"), "--payload", tagged, "--format", "Dynatrace")
		g.Expect(r.Routes).To(HaveLen(1))
		ladder := r.Routes[0]
		g.Expect(ladder.Matched).To(BeTrue(), ladder.Reason)
		g.Expect(ladder.Actions).To(HaveLen(4))
		ask := ladder.Actions[2]
		g.Expect(ask.Name).To(Equal("ask"))
		g.Expect(ask.Runs[0].HTTP.Body).To(MatchRegexp(`To page the team: manager approve problemhook-demo/dynatrace-[0-9a-f]{16}-open page \(or --reject\)`))
	})

	t.Run("Dynatrace per-entity Job", func(t *testing.T) {
		g := NewWithT(t)
		rich, err := os.ReadFile(dynatraceRich)
		g.Expect(err).NotTo(HaveOccurred())
		contention := writeFile(t, t.TempDir(), "contention.json",
			strings.Replace(string(rich), `"ProblemSeverity": "PERFORMANCE"`, `"ProblemSeverity": "RESOURCE_CONTENTION"`, 1))
		r := routesTestJSON(t, "--routes", filepath.Join(samples, "route.yaml"), "--payload", contention, "--format", "Dynatrace")
		g.Expect(r.Routes).To(HaveLen(1))
		legacy := r.Routes[0]
		g.Expect(legacy.Matched).To(BeTrue(), legacy.Reason)
		g.Expect(legacy.Actions).To(HaveLen(1))
		g.Expect(legacy.Actions[0].Kind).To(Equal("Job"))
		runs := legacy.Actions[0].Runs
		g.Expect(runs).To(HaveLen(2), "one run per impacted entity")
		for i, entity := range []string{"checkout-service", "payment-service"} {
			g.Expect(runs[i].Entity.Name).To(Equal(entity))
			g.Expect(runs[i].Job.Name).To(HavePrefix("legacy-incident-incident-"))
			c := runs[i].Job.Containers[0]
			g.Expect(c.Image).To(Equal("busybox:1.36"))
			g.Expect(c.Command).To(Equal([]string{"echo"}))
			g.Expect(c.Args).To(Equal([]string{"problem", "221194163", "entity", entity}), "$(VAR) expanded as the kubelet does")
			g.Expect(c.Env).To(ContainElements(
				cli.EnvVar{Name: "PROBLEM_DISPLAY_ID", Value: "221194163"},
				cli.EnvVar{Name: "PROBLEM_SEVERITY", Value: "RESOURCE_CONTENTION"},
				cli.EnvVar{Name: "ENTITY_NAME", Value: entity},
			))
		}
		g.Expect(runs[0].Job.Name).NotTo(Equal(runs[1].Job.Name))
	})

	t.Run("Guance", func(t *testing.T) {
		g := NewWithT(t)
		r := routesTestJSON(t, append(samplePaths, "--payload", guanceWarning, "--format", "Guance")...)
		for _, rr := range r.Routes {
			if rr.Name == "guance-to-dingtalk" {
				continue
			}
			g.Expect(rr.Matched).To(BeFalse(), rr.Name)
			g.Expect(rr.Reason).To(Equal(`spec.targets [dynatrace] does not list the event's target "guance"`), rr.Name)
		}
		dingtalk := byName(r)["guance-to-dingtalk"]
		g.Expect(dingtalk.Matched).To(BeTrue(), dingtalk.Reason)
		run := dingtalk.Actions[0].Runs[0].DingTalk
		g.Expect(dingtalk.Actions[0].Kind).To(Equal("DingTalk"))
		g.Expect(run.URL).To(Equal("<secret:dingtalk-robot/url>"))
		g.Expect(run.Sign).To(Equal("<secret:dingtalk-robot/secret>"))
		g.Expect(run.MsgType).To(Equal("markdown"))
		g.Expect(run.Title).To(Equal("WARNING: web001 Exist issues"))
		g.Expect(run.Text).To(HavePrefix("### WARNING: web001 Exist issues\n"))
		g.Expect(run.Text).To(ContainSubstring("- web001\n"))
		g.Expect(run.Text).To(HaveSuffix("[Open in Guance](https://console.guance.com/keyevents/monitorChart?xxxxxxxxxx)\n"))
	})

	t.Run("DynatraceWorkflow", func(t *testing.T) {
		g := NewWithT(t)
		// Posted to the workflow's own target, which no sample route names.
		r := routesTestJSON(t, append(samplePaths, "--payload", workflowClosed, "--format", "DynatraceWorkflow")...)
		g.Expect(r.Problem.Target).To(Equal("dynatrace-workflow"))
		for _, rr := range r.Routes {
			g.Expect(rr.Matched).To(BeFalse(), rr.Name)
			g.Expect(rr.Reason).To(HavePrefix("spec.targets ["), rr.Name)
		}

		// Posted to a target named dynatrace, its RESOLVED closes what the
		// routes opened.
		r = routesTestJSON(t, append(samplePaths, "--payload", workflowClosed, "--format", "DynatraceWorkflow", "--target", "dynatrace")...)
		routes := byName(r)
		g.Expect(r.Problem.State).To(Equal("RESOLVED"))
		g.Expect(routes["legacy-incident"].Reason).To(Equal(`spec.match.states [OPEN] does not hold the problem's state "RESOLVED"`))
		g.Expect(routes["opsgenie"].Actions[0].Runs[0].HTTP.URL).To(Equal(
			"https://api.opsgenie.com/v2/alerts/-1843743290896097469_1745403051227V2/close?identifierType=alias"))
		g.Expect(routes["opsgenie"].Actions[0].Runs[0].HTTP.Path).To(Equal("/v2/alerts/-1843743290896097469_1745403051227V2/close?identifierType=alias"))
		g.Expect(routes["pagerduty"].Actions[0].Runs[0].HTTP.Body).To(ContainSubstring(`"event_action": "resolve"`))
		g.Expect(routes["slack"].Actions[0].Runs[0].HTTP.Body).To(ContainSubstring(`:white_check_mark: RESOLVED 25045532: Http monitor outage`))
	})

	t.Run("test notification", func(t *testing.T) {
		g := NewWithT(t)
		r := routesTestJSON(t, append(samplePaths, "--payload", dynatraceTest, "--format", "Dynatrace")...)
		g.Expect(r.Problem.Test).To(BeTrue())
		for _, rr := range r.Routes {
			g.Expect(rr.Matched).To(BeFalse(), rr.Name)
			g.Expect(rr.Reason).To(Equal("a test notification runs only routes with spec.includeTestNotifications: true"))
		}
		g.Expect(r.Unchecked).To(ContainElement(ContainSubstring("NotificationTarget dynatrace has spec.testNotifications: Run")))
	})
}

// The default output is text: the problem, a table of the routes, the runs.
func TestRoutesTestText(t *testing.T) {
	noKubeconfig(t)
	g := NewWithT(t)
	code, stdout, stderr := routesTest(t, "--routes", paging, "--routes", filepath.Join(samples, "route.yaml"),
		"--payload", dynatraceRich, "--format", "dynatrace")
	g.Expect(code).To(Equal(0), stderr)
	g.Expect(stderr).To(BeEmpty())
	g.Expect(stdout).To(HavePrefix(`Problem 221194163 OPEN "Response time degradation" from target problemhook-demo/dynatrace (Dynatrace)` + "\n"))
	g.Expect(stdout).To(ContainSubstring("ROUTE            MATCHED  RUNS  WHY NOT, OR NOTE\n" +
		"legacy-incident  no       -     spec.match.severities [AVAILABILITY, ERROR, RESOURCE_CONTENTION] does not hold the problem's severity \"PERFORMANCE\"\n" +
		"opsgenie         yes      1\n"))
	g.Expect(stdout).To(ContainSubstring("  action page (HTTP)\n    request: POST https://events.pagerduty.com/v2/enqueue\n    body: |\n" +
		`      {"routing_key": "<secret:pagerduty/routing_key>",` + "\n"))
	g.Expect(stdout).To(ContainSubstring("Not checked offline:\n  - the route's Secrets"))
}

const routeHeader = `apiVersion: problemhook.io/v1alpha1
kind: IntegrationRoute
metadata:
  name: %s
  namespace: shop
spec:
`

// route writes a route named name whose spec is spec (indented by two).
func route(name, spec string) string {
	return strings.Replace(routeHeader, "%s", name, 1) + spec
}

const smsAction = `  actions:
  - name: sms
    twilio:
      credentialsSecretRef: {name: twilio}
      from: "+15005550006"
      to: ["+4915112345678", "+4915187654321"]
      body: "{{.DisplayID}} {{.Title}}"
`

// Why a route does not match, criterion by criterion.
func TestRoutesTestWhyNot(t *testing.T) {
	noKubeconfig(t)
	g := NewWithT(t)
	dir := t.TempDir()
	writeFile(t, dir, "routes.yaml", strings.Join([]string{
		route("cel-false", "  match:\n    expression: 'problem.title.contains(\"CPU\")'\n"+smsAction),
		route("cel-true", "  match:\n    expression: 'problem.impactedEntities.exists(e, e.name == \"payment-service\")'\n"+smsAction),
		route("entities", "  match:\n    entityTypes: [HOST]\n"+smsAction),
		route("impacts", "  match:\n    impacts: [APPLICATION]\n"+smsAction),
		route("management-zones", "  match:\n    managementZones: [Billing]\n"+smsAction),
		route("muted", "  muteTimeIntervals:\n  - times: [{startTime: \"09:00\", endTime: \"17:00\"}]\n"+smsAction),
		route("suspended", "  suspend: true\n"+smsAction),
		route("tags", "  match:\n    tags: [env:prod, tier:gold]\n"+smsAction),
	}, "---\n"))
	r := routesTestJSON(t, "--routes", dir, "--payload", dynatraceRich, "--format", "Dynatrace", "--at", "2026-11-21T10:00:00Z")
	routes := byName(r)
	g.Expect(routes).To(HaveLen(8))
	g.Expect(routes["cel-false"].Reason).To(Equal("spec.match.expression is false for the problem"))
	g.Expect(routes["entities"].Reason).To(Equal(
		"no impacted entity is of a type in spec.match.entityTypes [HOST] (impacted: [SERVICE checkout-service, SERVICE payment-service])"))
	g.Expect(routes["impacts"].Reason).To(Equal(`spec.match.impacts [APPLICATION] does not hold the problem's impact "SERVICE"`))
	g.Expect(routes["management-zones"].Reason).To(Equal(
		"spec.match.managementZones [Billing] holds none of the problem's management zones [Shop, Production]"))
	g.Expect(routes["tags"].Reason).To(Equal(`spec.match.tags: the problem has no tag "tier:gold" (its tags: [env:prod, team:shop, frontend])`))
	g.Expect(routes["suspended"].Suspended).To(BeTrue())
	g.Expect(routes["suspended"].Matched).To(BeFalse())
	g.Expect(routes["suspended"].Reason).To(Equal("suspended (spec.suspend): it matches no new event; unsuspended, it would match this one"))
	for _, name := range []string{"cel-false", "entities", "impacts", "management-zones", "tags", "suspended"} {
		g.Expect(routes[name].Actions).To(BeEmpty(), name)
	}

	cel := routes["cel-true"]
	g.Expect(cel.Matched).To(BeTrue())
	g.Expect(cel.Reason).To(BeEmpty())
	g.Expect(cel.Muted).To(BeEmpty())
	g.Expect(cel.Actions[0].Kind).To(Equal("Twilio"))
	runs := cel.Actions[0].Runs
	g.Expect(runs).To(HaveLen(2), "one run per recipient")
	g.Expect(runs[0].Recipient).To(Equal("+49*****5678"), "masked as status shows it")
	g.Expect(runs[1].Recipient).To(Equal("+49*****4321"))
	g.Expect(*runs[0].Twilio).To(Equal(cli.TwilioRun{From: "+15005550006", Body: "221194163 Response time degradation"}))

	muted := routes["muted"]
	g.Expect(muted.Matched).To(BeTrue(), "a muted route matches; its runs are Muted")
	g.Expect(muted.Muted).To(Equal("by spec.muteTimeIntervals[0] until 2026-11-21T17:00:00Z"))
	g.Expect(muted.Actions[0].Runs).To(HaveLen(2))

	r = routesTestJSON(t, "--routes", dir, "--payload", dynatraceRich, "--format", "Dynatrace", "--at", "2026-11-21T18:00:00Z")
	g.Expect(byName(r)["muted"].Muted).To(BeEmpty())
}

// A route the controller would not make Ready fails the test with the
// controller's message.
func TestRoutesTestInvalid(t *testing.T) {
	noKubeconfig(t)
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yaml", route("good", smsAction))
	privileged := route("privileged", `  actions:
  - name: debug
    job:
      template:
        spec:
          template:
            spec:
              restartPolicy: Never
              hostPID: true
              containers:
              - name: debug
                image: busybox:1.36
                env:
                - name: TOKEN
                  valueFrom: {secretKeyRef: {name: debug-token, key: token}}
                args: ["$(TOKEN)", "$(PROBLEM_TITLE)", "$$(PROBLEM_TITLE)", "$(UNSET)"]
`)
	tests := []struct {
		name, route, reason, message string
	}{
		{"CEL", route("bad", "  match:\n    expression: 'problem.titel == \"CPU\"'\n"+smsAction),
			"InvalidExpression", "spec.match.expression: 1:8: undefined field 'titel'"},
		{"template", route("bad", strings.Replace(smsAction, "{{.Title}}", "{{.Titel}}", 1)),
			"InvalidTemplate", "spec.actions[0].twilio.body: template: twilio.body:1:17: Problem has no field Titel"},
		{"privileged Job", privileged,
			"PrivilegedJobTemplate", "spec.actions[0].job.template.spec.template.spec.hostPID: the Pod asks for the node, which this operator does not allow (--allow-privileged-jobs)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			bad := writeFile(t, t.TempDir(), "bad.yaml", tt.route)
			code, stdout, stderr := routesTest(t, "--routes", bad, "--routes", good, "--payload", dynatraceRich, "--format", "Dynatrace", "-o", "json")
			g.Expect(code).To(Equal(1))
			var r cli.RoutesReport
			g.Expect(json.Unmarshal([]byte(stdout), &r)).To(Succeed(), "the report is written in full")
			routes := byName(r)
			g.Expect(routes["good"].Matched).To(BeTrue())
			name := r.Routes[0].Name
			if name == "good" {
				name = r.Routes[1].Name
			}
			g.Expect(routes[name].Ready).To(BeFalse())
			g.Expect(routes[name].ReadyReason).To(Equal(tt.reason))
			g.Expect(routes[name].Reason).To(ContainSubstring(tt.message))
			g.Expect(stderr).To(HavePrefix("error: IntegrationRoute shop/" + name + " (" + bad + ") would not be Ready: " + tt.reason + ": "))
			g.Expect(stderr).To(ContainSubstring(tt.message))
		})
	}

	t.Run("privileged Job allowed", func(t *testing.T) {
		g := NewWithT(t)
		file := writeFile(t, t.TempDir(), "privileged.yaml", privileged)
		r := routesTestJSON(t, "--routes", file, "--payload", dynatraceRich, "--format", "Dynatrace", "--allow-privileged-jobs")
		g.Expect(r.Routes[0].Matched).To(BeTrue())
		c := r.Routes[0].Actions[0].Runs[0].Job.Containers[0]
		g.Expect(c.Env).To(ContainElement(cli.EnvVar{Name: "TOKEN", Value: "<secret:debug-token/token>"}))
		g.Expect(c.Args).To(Equal([]string{"<secret:debug-token/token>", "Response time degradation", "$(PROBLEM_TITLE)", "$(UNSET)"}))
	})

	t.Run("text", func(t *testing.T) {
		g := NewWithT(t)
		bad := writeFile(t, t.TempDir(), "bad.yaml", tests[0].route)
		code, stdout, stderr := routesTest(t, "--routes", bad, "--payload", dynatraceRich, "--format", "Dynatrace")
		g.Expect(code).To(Equal(1))
		g.Expect(stdout).To(ContainSubstring("bad    invalid  -     InvalidExpression: spec.match.expression: 1:8: undefined field 'titel'"))
		g.Expect(stderr).To(ContainSubstring("would not be Ready: InvalidExpression: spec.match.expression: 1:8: undefined field 'titel'"))
	})
}

// -o json prints {"routes": [{"name", "matched", "reason", "actions":
// [{"name", "kind", "runs": [...]}]}]}, for scripts.
func TestRoutesTestJSONShape(t *testing.T) {
	noKubeconfig(t)
	g := NewWithT(t)
	code, stdout, stderr := routesTest(t, "--routes", paging, "--payload", dynatraceRich, "--format", "Dynatrace", "-o", "json")
	g.Expect(code).To(Equal(0), stderr)
	var doc map[string]any
	g.Expect(json.Unmarshal([]byte(stdout), &doc)).To(Succeed())
	g.Expect(doc).To(HaveKey("problem"))
	g.Expect(doc).To(HaveKey("unchecked"))
	routes := doc["routes"].([]any)
	g.Expect(routes).To(HaveLen(4))
	first := routes[0].(map[string]any)
	g.Expect(first).To(HaveKeyWithValue("name", "opsgenie"))
	g.Expect(first).To(HaveKeyWithValue("namespace", "problemhook-demo"))
	g.Expect(first).To(HaveKeyWithValue("matched", true))
	g.Expect(first).To(HaveKeyWithValue("ready", true))
	g.Expect(first).To(HaveKeyWithValue("suspended", false))
	g.Expect(first).To(HaveKeyWithValue("file", filepath.Join(paging, "opsgenie.yaml")))
	action := first["actions"].([]any)[0].(map[string]any)
	g.Expect(action).To(HaveKeyWithValue("name", "alert"))
	g.Expect(action).To(HaveKeyWithValue("kind", "HTTP"))
	run := action["runs"].([]any)[0].(map[string]any)
	g.Expect(run).To(HaveKey("http"))
	g.Expect(run["http"]).To(HaveKeyWithValue("url", "https://api.opsgenie.com/v2/alerts"))
	g.Expect(run["http"]).To(HaveKeyWithValue("method", "POST"))
	g.Expect(run["http"]).To(HaveKey("body"))
	problem := doc["problem"].(map[string]any)
	g.Expect(problem).To(HaveKeyWithValue("displayID", "221194163"))
}

// Files may hold several documents of any kind; directories are read for
// their YAML files, recursively.
func TestRoutesTestFiles(t *testing.T) {
	noKubeconfig(t)
	g := NewWithT(t)
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: twilio, namespace: shop}\n---\n"+
		route("two", smsAction)+"---\n# only a comment\n---\n"+route("one", smsAction))
	writeFile(t, dir, "nested/b.yml", route("three", smsAction))
	writeFile(t, dir, "payload.json", `{"State": "OPEN"}`)
	writeFile(t, dir, "notes.txt", "not YAML: {")
	other := writeFile(t, t.TempDir(), "other.manifest", route("zero", smsAction))

	r := routesTestJSON(t, "--routes", dir, "--routes", other, "--payload", dynatraceRich, "--format", "Dynatrace")
	var names []string
	for _, rr := range r.Routes {
		names = append(names, rr.Name)
		g.Expect(rr.Matched).To(BeTrue())
	}
	g.Expect(names).To(Equal([]string{"one", "three", "two", "zero"}), "sorted by name")
	g.Expect(byName(r)["three"].File).To(Equal(filepath.Join(dir, "nested", "b.yml")))

	for _, tt := range []struct{ name, text, want string }{
		{"duplicate", route("one", smsAction), "IntegrationRoute shop/one is in both"},
		{"unknown field", strings.Replace(route("typo", smsAction), "  actions:", "  match:\n    severties: [ERROR]\n  actions:", 1),
			`document 1: IntegrationRoute: error unmarshaling JSON: while decoding JSON: json: unknown field "severties"`},
		{"other version", strings.Replace(route("old", smsAction), "v1alpha1", "v1beta9", 1), "apiVersion problemhook.io/v1beta9: this manager reads problemhook.io/v1alpha1"},
	} {
		file := writeFile(t, t.TempDir(), tt.name+".yaml", tt.text)
		code, stdout, stderr := routesTest(t, "--routes", dir, "--routes", file, "--payload", dynatraceRich, "--format", "Dynatrace")
		g.Expect(code).To(Equal(1), tt.name)
		g.Expect(stdout).To(BeEmpty(), tt.name)
		g.Expect(stderr).To(ContainSubstring(tt.want), tt.name)
	}

	code, _, stderr := routesTest(t, "--routes", filepath.Join(dir, "payload.json"), "--payload", dynatraceRich, "--format", "Dynatrace")
	g.Expect(code).To(Equal(1))
	g.Expect(stderr).To(ContainSubstring("no IntegrationRoute in " + filepath.Join(dir, "payload.json")))
}

func TestRoutesTestUsageErrors(t *testing.T) {
	noKubeconfig(t)
	g := NewWithT(t)
	g.Expect(cli.IsCommand("routes")).To(BeTrue())
	cases := []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"routes"}, 2, "routes takes one command, test"},
		{[]string{"routes", "check"}, 2, "routes takes one command, test"},
		{[]string{"routes", "-h"}, 0, "-payload"},
		{[]string{"routes", "test", "-h"}, 0, "Secret values are never read"},
		{[]string{"routes", "test", "--payload", dynatraceRich, "--format", "Dynatrace"}, 2, "--routes is required"},
		{[]string{"routes", "test", "--routes", samples}, 2, "--payload or --event is required"},
		{[]string{"routes", "test", "--routes", samples, "--payload", dynatraceRich}, 2, "--format is required with --payload"},
		{[]string{"routes", "test", "--routes", samples, "--payload", dynatraceRich, "--format", "Prometheus"}, 2,
			`--format "Prometheus" is not one of Dynatrace, Guance, DynatraceWorkflow`},
		{[]string{"routes", "test", "--routes", samples, "--payload", dynatraceRich, "--event", "ns/ev"}, 2, "exclude each other"},
		{[]string{"routes", "test", "--routes", samples, "--event", "ev"}, 2, `--event must be <namespace>/<name>, got "ev"`},
		{[]string{"routes", "test", "--routes", samples, "--event", "ns/ev", "--format", "Guance"}, 2, "go with --payload"},
		{[]string{"routes", "test", "--routes", samples, "--payload", dynatraceRich, "--format", "Dynatrace", "--at", "10:00"}, 2, "--at"},
		{[]string{"routes", "test", "--routes", samples, "--payload", dynatraceRich, "--format", "Dynatrace", "-o", "yaml"}, 2, `unknown output format "yaml"`},
		{[]string{"routes", "test", "--routes", samples, "--payload", guanceWarning, "--format", "Dynatrace"}, 1, "the receiver would refuse it: Dynatrace payload: "},
		{[]string{"routes", "test", "--routes", "absent.yaml", "--payload", dynatraceRich, "--format", "Dynatrace"}, 1, "absent.yaml: no such file"},
	}
	for _, tc := range cases {
		var stdout, stderr bytes.Buffer
		code := cli.Main(context.Background(), tc.args, &stdout, &stderr)
		g.Expect(code).To(Equal(tc.code), "%q: %s", tc.args, stderr.String())
		g.Expect(stderr.String()).To(ContainSubstring(tc.stderr), "%q", tc.args)
		g.Expect(stdout.String()).To(BeEmpty(), "%q", tc.args)
	}

	// --event reads the cluster, through the kubeconfig, which is absent.
	var stdout, stderr bytes.Buffer
	code := cli.Main(context.Background(), []string{"routes", "test", "--routes", samples, "--event", "ns/ev"}, &stdout, &stderr)
	g.Expect(code).To(Equal(1))
	g.Expect(stderr.String()).To(HavePrefix("error: loading kubeconfig: "))
}

// --event tests the routes against an event the receiver stored.
func TestRoutesTestStoredEvent(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "routes-test-"}}
	g.Expect(k8s.Create(ctx, ns)).To(Succeed())
	nt := newTarget(t, ns.Name, "dynatrace", problemhookv1alpha1.FormatDynatrace, func(nt *problemhookv1alpha1.NotificationTarget) {
		nt.Labels = map[string]string{unmanagedLabel: "true"}
	})
	body, err := os.ReadFile(dynatraceRich)
	g.Expect(err).NotTo(HaveOccurred())
	spec, err := payload.Parse(problemhookv1alpha1.FormatDynatrace, body)
	g.Expect(err).NotTo(HaveOccurred())
	spec.ReceivedAt = metav1.Now()
	ev := problemhookv1alpha1.NewProblemEvent(nt, spec)
	g.Expect(k8s.Create(ctx, ev)).To(Succeed())

	dir := t.TempDir()
	writeFile(t, dir, "routes.yaml", strings.ReplaceAll(route("here", smsAction), "namespace: shop", "namespace: "+ns.Name)+
		"---\n"+route("elsewhere", smsAction))
	code, stdout, stderr := routesTest(t, "--routes", dir, "--event", ns.Name+"/"+ev.Name, "--kubeconfig", kubeconfig(t), "-o", "json")
	g.Expect(code).To(Equal(0), stderr)
	var r cli.RoutesReport
	g.Expect(json.Unmarshal([]byte(stdout), &r)).To(Succeed())
	g.Expect(r.Problem.Event).To(Equal(ev.Name))
	routes := byName(r)
	g.Expect(routes["here"].Matched).To(BeTrue())
	g.Expect(routes["here"].Actions[0].Runs[0].Twilio.Body).To(Equal("221194163 Response time degradation"))
	g.Expect(routes["elsewhere"].Matched).To(BeFalse())
	g.Expect(routes["elsewhere"].Reason).To(Equal("the route is in namespace shop: only routes of the event's namespace " + ns.Name + " run for it"))

	code, _, stderr = routesTest(t, "--routes", dir, "--event", ns.Name+"/absent", "--kubeconfig", kubeconfig(t))
	g.Expect(code).To(Equal(1))
	g.Expect(stderr).To(Equal("error: ProblemEvent " + ns.Name + "/absent not found\n"))
}
