/*
Copyright 2026 The problemhook Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command promrule writes config/prometheus/prometheusrule.yaml, the
// PrometheusRule that the Prometheus Operator loads, from
// config/prometheus/alerts.yaml, the plain rule file that promtool checks
// and tests: the rules have one source, and what promtool tested is what
// the operator loads. The rule file's groups become spec.groups as they
// are written, comments and all. `make manifests` runs it from the root of
// the repository:
//
//	go run ./hack/promrule
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strings"
)

func main() {
	in := flag.String("in", "config/prometheus/alerts.yaml", "The rule file.")
	out := flag.String("out", "config/prometheus/prometheusrule.yaml", "The PrometheusRule to write.")
	flag.Parse()
	rules, err := os.ReadFile(*in)
	if err == nil {
		err = os.WriteFile(*out, Render(rules), 0o644)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "promrule: %v\n", err)
		os.Exit(1)
	}
}

// header is the PrometheusRule around the groups. It names its namespace
// and prefix itself: config/default, which enables config/prometheus,
// sets neither.
const header = `# Generated from alerts.yaml by hack/promrule (make manifests): edit
# alerts.yaml, which promtool checks and tests, not this file.
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: problemhook-alerts
  namespace: problemhook-system
  labels:
    app.kubernetes.io/name: problemhook
    app.kubernetes.io/component: metrics
spec:
`

// Render returns the PrometheusRule whose spec is the rule file rules,
// indented under spec: as it is, less its leading comment, which speaks
// of the rule file.
func Render(rules []byte) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	lines := strings.SplitAfter(string(rules), "\n")
	for len(lines) > 0 && (strings.HasPrefix(lines[0], "#") || strings.TrimSpace(lines[0]) == "") {
		lines = lines[1:]
	}
	for _, line := range lines {
		switch {
		case line == "":
		case strings.TrimSpace(line) == "":
			b.WriteString("\n")
		default:
			b.WriteString("  " + line)
		}
	}
	return b.Bytes()
}
