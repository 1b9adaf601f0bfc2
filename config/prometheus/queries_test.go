package prometheus_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"
	"sigs.k8s.io/yaml"

	"github.com/problemhook/problemhook/internal/metrics"
)

// A rule or a panel that names a metric the manager does not export shows
// nothing, and an alert on it never fires: every metric that alerts.yaml
// and the Grafana dashboard query must be one the manager exports.
func TestQueriesNameExportedMetrics(t *testing.T) {
	exported := exportedMetrics(t)
	for _, want := range []string{"problemhook_ready", "leader_election_master_status", "up",
		"controller_runtime_reconcile_total", "workqueue_depth", "rest_client_requests_total", "process_resident_memory_bytes"} {
		if !exported[want] {
			t.Errorf("%s is not among the exported metrics: the test gathers too little", want)
		}
	}
	queries := ruleQueries(t)
	dashboard := dashboardQueries(t)
	if len(dashboard) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	for where, expr := range mergeMaps(queries, dashboard) {
		names := metricNames(expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", where, expr)
		}
		for _, n := range names {
			if !exported[n] {
				t.Errorf("%s names %s, which the manager does not export", where, n)
			}
		}
	}
}

// Every alert's runbook_url leads to a section of docs/runbooks.md, and
// every alert has a summary and a description.
func TestAlertsHaveRunbooks(t *testing.T) {
	runbooks, err := os.ReadFile("../../docs/runbooks.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for line := range strings.Lines(string(runbooks)) {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			anchors[slug(h)] = true
		}
	}
	for _, r := range rules(t) {
		if r.Alert == "" {
			continue
		}
		if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
			t.Errorf("%s has no summary or no description", r.Alert)
		}
		_, anchor, ok := strings.Cut(r.Annotations["runbook_url"], "/docs/runbooks.md#")
		switch {
		case !ok:
			t.Errorf("%s: runbook_url %q is not into docs/runbooks.md", r.Alert, r.Annotations["runbook_url"])
		case anchor != strings.ToLower(r.Alert):
			t.Errorf("%s: runbook_url's anchor is %q, want %q", r.Alert, anchor, strings.ToLower(r.Alert))
		case !anchors[anchor]:
			t.Errorf("%s: docs/runbooks.md has no section %q", r.Alert, anchor)
		}
	}
}

type rule struct {
	Alert       string            `json:"alert"`
	Record      string            `json:"record"`
	Expr        string            `json:"expr"`
	Annotations map[string]string `json:"annotations"`
}

func rules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile("alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []rule `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	var all []rule
	for _, g := range file.Groups {
		all = append(all, g.Rules...)
	}
	if len(all) == 0 {
		t.Fatal("alerts.yaml has no rules")
	}
	return all
}

func ruleQueries(t *testing.T) map[string]string {
	q := map[string]string{}
	for _, r := range rules(t) {
		q["alerts.yaml: "+r.Alert+r.Record] = r.Expr
	}
	return q
}

// dashboardQueries are the expr of every target of every panel, rows'
// panels included, and the queries of the template variables.
func dashboardQueries(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile("../grafana/problemhook.json")
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var d struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	q := map[string]string{}
	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatal(err)
			}
			for i, target := range p.Targets {
				q["problemhook.json: panel "+p.Title+" #"+string(rune('A'+i))] = target.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if s, ok := v.Query.(string); ok && v.Type == "query" {
			// label_values(metric, label) names a metric like a selector.
			q["problemhook.json: variable "+v.Name] = strings.NewReplacer("label_values(", "(").Replace(s)
		}
	}
	return q
}

func mergeMaps(a, b map[string]string) map[string]string {
	m := map[string]string{}
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// exportedMetrics are the names of the series the manager exports:
// problemhook's own from internal/metrics, and what controller-runtime's
// registry holds once a controller has reconciled, a client has made a
// request and a leader elector exists, as in the manager (Go and process
// collectors included), with a histogram's _bucket, _sum and _count.
// And up, which Prometheus adds to every scrape.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{"up": true}
	add := func(name string, typ dto.MetricType) {
		switch typ {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[name+"_bucket"], names[name+"_sum"], names[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[name], names[name+"_sum"], names[name+"_count"] = true, true, true
		default:
			names[name] = true
		}
	}
	for _, c := range metrics.Collectors() {
		typ := dto.MetricType_COUNTER
		switch c.(type) {
		case prometheus.Histogram, *prometheus.HistogramVec:
			typ = dto.MetricType_HISTOGRAM
		}
		for _, n := range descNames(c) {
			add(n, typ)
		}
	}

	exerciseControllerRuntime(t)
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		add(f.GetName(), f.GetType())
	}
	return names
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// descNames are the names of c's metrics, which Desc shows only as text.
func descNames(c prometheus.Collector) []string {
	ch := make(chan *prometheus.Desc, 16)
	go func() { c.Describe(ch); close(ch) }()
	var names []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

// exerciseControllerRuntime makes controller-runtime and client-go create
// the series of their metrics, as the manager does: a vector shows in the
// registry only once it has one.
func exerciseControllerRuntime(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// A controller that reconciles one request: controller_runtime_*, workqueue_*.
	done := make(chan struct{})
	c, err := controller.NewUnmanaged("metrics-probe", controller.Options{
		SkipNameValidation: new(true),
		Reconciler: reconcile.Func(func(context.Context, reconcile.Request) (reconcile.Result, error) {
			close(done)
			return reconcile.Result{}, nil
		}),
	})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan event.GenericEvent, 1)
	events <- event.GenericEvent{Object: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "b"}}}
	if err := c.Watch(source.Channel(events, &handler.TypedEnqueueRequestForObject[client.Object]{})); err != nil {
		t.Fatal(err)
	}
	running := make(chan error, 1)
	go func() { running <- c.Start(ctx) }()
	select {
	case <-done:
	case err := <-running:
		t.Fatalf("the controller stopped before it reconciled: %v", err)
	case <-ctx.Done():
		t.Fatal("the controller did not reconcile")
	}

	// A request through client-go: rest_client_*.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"major":"1","minor":"36","gitVersion":"v1.36.3"}`))
	}))
	defer srv.Close()
	dc, err := discovery.NewDiscoveryClientForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dc.ServerVersion(); err != nil {
		t.Fatal(err)
	}

	// A leader elector, which starts as a backup: leader_election_master_status.
	if _, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:          &resourcelock.LeaseLock{LeaseMeta: metav1.ObjectMeta{Namespace: "a", Name: "lease"}, LockConfig: resourcelock.ResourceLockConfig{Identity: "probe"}},
		LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
		Callbacks: leaderelection.LeaderCallbacks{OnStartedLeading: func(context.Context) {}, OnStoppedLeading: func() {}},
		Name:      "problemhook.problemhook.io",
	}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-running; err != nil {
		t.Errorf("the controller: %v", err)
	}
}

// slug is the anchor GitHub gives a heading.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || ('a' <= r && r <= 'z') || ('0' <= r && r <= '9'):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// What metricNames skips: PromQL's keywords, aggregations and functions
// are told apart from metric names by what follows them, except these,
// which may stand before "by", "without" or a space.
var notMetrics = []string{"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
	"offset", "bool", "inf", "nan", "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
	"count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}

var (
	// Strings (label values, regexes) go first, as they may hold braces;
	// then label matchers, ranges and subqueries, Grafana's variables and
	// label lists, which name no metric.
	quoted    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	stripped  = regexp.MustCompile(`\$\{[^}]*\}|\$\w+|\{[^}]*\}|\[[^\]]*\]`)
	labelList = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	token     = regexp.MustCompile(`[0-9][0-9a-zA-Z_.]*|[a-zA-Z_:][a-zA-Z0-9_:]*`)
)

// metricNames are the metric names a PromQL expression selects: the
// identifiers that are not numbers, durations, keywords, or functions
// (an identifier followed by "(").
func metricNames(expr string) []string {
	expr = quoted.ReplaceAllString(expr, " ")
	expr = stripped.ReplaceAllString(expr, " ")
	expr = labelList.ReplaceAllString(expr, " ")
	var names []string
	for _, loc := range token.FindAllStringIndex(expr, -1) {
		id := expr[loc[0]:loc[1]]
		rest := strings.TrimLeft(expr[loc[1]:], " \t\n")
		switch {
		case id[0] >= '0' && id[0] <= '9',
			strings.HasPrefix(rest, "("),
			slices.Contains(notMetrics, strings.ToLower(id)),
			slices.Contains(names, id):
			continue
		}
		names = append(names, id)
	}
	return names
}

func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`up`: {"up"},
		`absent(up{job="problemhook-metrics"} == 1)`:                                                                                     {"up"},
		`sum by (namespace, target) (rate(problemhook_receiver_notifications_total{result=~"failed|shed"}[5m]))`:                         {"problemhook_receiver_notifications_total"},
		`histogram_quantile(0.99, sum by (le) (rate(problemhook_receiver_store_duration_seconds_bucket{job="$job"}[$__rate_interval])))`: {"problemhook_receiver_store_duration_seconds_bucket"},
		`a == 0 unless on (instance) b{name="x"} == 0`:                                                                                   {"a", "b"},
		`sum without (code) (increase(x_total[1h] offset 5m)) / ignoring(code) group_left y`:                                             {"x_total", "y"},
		`max(leader_election_master_status{name="problemhook.problemhook.io"}) < 1`:                                                      {"leader_election_master_status"},
		`label_replace(go_memstats_heap_inuse_bytes, "pod", "$1", "instance", "(.*)")`:                                                   {"go_memstats_heap_inuse_bytes"},
		`topk(5, sum by (route) (rate(c[5m:1m])))`:                                                                                       {"c"},
		`count(process_resident_memory_bytes) > 1e3`:                                                                                     {"process_resident_memory_bytes"},
		`rate(d_total{endpoint="POST /problems/{problemId}/comments"}[5m])`:                                                              {"d_total"},
		`sum(rate(x[${__range}])) and on() vector(1)`:                                                                                    {"x"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}
