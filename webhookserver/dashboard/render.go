package dashboard

import (
	"bytes"
	"encoding/json"
	"html/template"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
)

// dashboardPages are the page templates; each is parsed with layout.html.
var dashboardPages = []string{"overview", "events", "event", "feed", "error"}

func parsePages() map[string]*template.Template {
	funcs := template.FuncMap{
		"when":      when,
		"entityURL": entityURL,
		"lower":     strings.ToLower,
		"join":      strings.Join,
		"dict":      func(base, id string) map[string]string { return map[string]string{"Base": base, "ID": id} },
		"ready": func(conds []metav1.Condition) string {
			if c := meta.FindStatusCondition(conds, problemhookv1alpha1.ConditionReady); c != nil {
				return c.Message
			}
			return "not processed yet"
		},
	}
	pages := map[string]*template.Template{}
	for _, name := range dashboardPages {
		pages[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(dashboardFiles,
			"web/layout.html", "web/"+name+".html"))
	}
	return pages
}

// when formats a time for people: the date in UTC, and how long ago.
func when(v any) string {
	var t time.Time
	switch v := v.(type) {
	case time.Time:
		t = v
	case *time.Time:
		if v == nil {
			return "-"
		}
		t = *v
	case metav1.Time:
		t = v.Time
	case *metav1.Time:
		if v == nil {
			return "-"
		}
		t = v.Time
	}
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// entityIDPattern matches Dynatrace entity ids, e.g. HOST-0123456789ABCDEF.
var entityIDPattern = regexp.MustCompile(`^[A-Z][A-Z0-9_]*-[0-9A-F]{16}$`)

// entityURL links an entity id to its page in the Dynatrace UI at base, or
// is empty when there is no UI or id is not an entity id.
func entityURL(base, id string) string {
	if base == "" || !entityIDPattern.MatchString(id) {
		return ""
	}
	return base + "/ui/entity/" + url.PathEscape(id)
}

// node is a JSON value laid out for the page: an object or array as a
// nested table, a scalar as text, a link, or a date.
type node struct {
	Kind   string // object, array, text
	Text   string
	Link   string
	Fields []field
	Items  []*node
}

type field struct {
	Key   string
	Value *node
}

// jsonTree parses raw into a node tree, or returns nil when it is not
// JSON. Numbers under keys that name a time (startTime, createdAtTimestamp)
// are epoch milliseconds and shown as dates; entity ids link to base.
func jsonTree(raw, base string) *node {
	dec := json.NewDecoder(bytes.NewReader([]byte(raw)))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil
	}
	return toNode("", v, base)
}

func toNode(key string, v any, base string) *node {
	switch v := v.(type) {
	case map[string]any:
		n := &node{Kind: "object"}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			n.Fields = append(n.Fields, field{Key: k, Value: toNode(k, v[k], base)})
		}
		return n
	case []any:
		n := &node{Kind: "array"}
		for _, item := range v {
			n.Items = append(n.Items, toNode(key, item, base))
		}
		return n
	case json.Number:
		lk := strings.ToLower(key)
		if ms, err := v.Int64(); err == nil && ms > 1e11 && (strings.HasSuffix(lk, "time") || strings.HasSuffix(lk, "timestamp")) {
			return &node{Kind: "text", Text: when(time.UnixMilli(ms)) + " (" + v.String() + ")"}
		}
		return &node{Kind: "text", Text: v.String()}
	case string:
		n := &node{Kind: "text", Text: v, Link: entityURL(base, v)}
		if n.Link == "" && (strings.HasPrefix(v, "https://") || strings.HasPrefix(v, "http://")) {
			n.Link = v
		}
		return n
	case bool:
		if v {
			return &node{Kind: "text", Text: "true"}
		}
		return &node{Kind: "text", Text: "false"}
	default:
		return &node{Kind: "text", Text: "null"}
	}
}
