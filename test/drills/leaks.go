//go:build linux

package drills

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
)

// secretsUsed are the values no log, Event or stored object may hold.
var secretsUsed = map[string]string{
	"Dynatrace API token":      dtToken,
	"old webhook password":     oldPassword,
	"new webhook password":     newPassword,
	"Twilio auth token":        twilioToken,
	"HTTP Authorization value": strings.TrimPrefix(httpAuthHeader, "Bearer "),
	"phone number":             strings.TrimPrefix(phoneNumber, "+"),
}

// secretsNeverLeak searches what the drills left for the secrets they
// used: the manager's logs, every object of every kind the API server
// lists (Events included) but Secrets, and the comments the fake Dynatrace
// got. The phone number is expected only masked, and in the routes' own
// spec (and the managed fields that record it), where the user wrote it.
func (d *drills) secretsNeverLeak(ctx context.Context) result {
	var r result
	files, _ := filepath.Glob(filepath.Join(d.out, "*.log"))
	logs := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			r.Failures = append(r.Failures, err.Error())
			continue
		}
		logs += len(b)
		r.Failures = append(r.Failures, leaks(filepath.Base(f), string(b))...)
	}
	objects, err := d.everyObject(ctx)
	if err != nil {
		r.Failures = append(r.Failures, "listing the stored objects: "+err.Error())
	}
	for _, o := range objects {
		if o.GetKind() == "IntegrationRoute" {
			unstructured.RemoveNestedField(o.Object, "spec")
			unstructured.RemoveNestedField(o.Object, "metadata", "managedFields")
		}
		b, _ := json.Marshal(o.Object)
		r.Failures = append(r.Failures, leaks(fmt.Sprintf("%s %s/%s", o.GetKind(), o.GetNamespace(), o.GetName()), string(b))...)
	}
	comments := 0
	for _, req := range d.dt.Requests() {
		if strings.HasSuffix(req.Path, "/comments") && req.Method == http.MethodPost {
			comments++
			r.Failures = append(r.Failures, leaks("a comment sent to Dynatrace", string(req.Body))...)
		}
	}
	r.Counts = fmt.Sprintf("%d secrets searched for in %d KiB of manager logs, %d stored objects (Events included, Secrets not) and %d comments sent to Dynatrace",
		len(secretsUsed), logs>>10, len(objects), comments)
	return r
}

// leaks says which secrets text holds, each with what surrounds its first
// appearance (the secret itself masked).
func leaks(where, text string) []string {
	var out []string
	for what, secret := range secretsUsed {
		i := strings.Index(text, secret)
		if i < 0 {
			continue
		}
		context := text[max(0, i-60):min(len(text), i+len(secret)+20)]
		context = strings.ReplaceAll(context, secret, "<"+what+">")
		out = append(out, fmt.Sprintf("%s holds the %s: …%s…", where, what, context))
	}
	return out
}

// everyObject lists every object of every listable kind but Secrets.
func (d *drills) everyObject(ctx context.Context) ([]unstructured.Unstructured, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(d.cfg)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(d.cfg)
	if err != nil {
		return nil, err
	}
	lists, err := dc.ServerPreferredResources()
	if err != nil {
		return nil, err
	}
	var out []unstructured.Unstructured
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			return nil, err
		}
		for _, res := range l.APIResources {
			if strings.Contains(res.Name, "/") || res.Name == "secrets" || !slices.Contains(res.Verbs, "list") {
				continue
			}
			ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			list, err := dyn.Resource(gv.WithResource(res.Name)).List(ctx, metav1.ListOptions{})
			cancel()
			if err != nil {
				continue // some kinds (e.g. reviews) cannot be listed although they say so
			}
			out = append(out, list.Items...)
		}
	}
	return out, nil
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
