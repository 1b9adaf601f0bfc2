package main

import (
	"bytes"
	"os"
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"
)

const (
	rulesFile = "../../config/prometheus/alerts.yaml"
	ruleFile  = "../../config/prometheus/prometheusrule.yaml"
)

// The PrometheusRule is what `go run ./hack/promrule` writes from the rule
// file now: a rule edited in one and not the other fails here, and in
// `make lint`'s check of generated files.
func TestPrometheusRuleIsCurrent(t *testing.T) {
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(ruleFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, Render(rules)) {
		t.Errorf("%s is stale: run `make manifests` (go run ./hack/promrule)", ruleFile)
	}
}

// Indenting keeps the YAML's meaning: spec is the rule file, rule by rule.
func TestSpecIsTheRuleFile(t *testing.T) {
	rules, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var file, rule struct {
		Kind string         `json:"kind"`
		Spec map[string]any `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(rules, &file.Spec); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(Render(rules), &rule); err != nil {
		t.Fatal(err)
	}
	if rule.Kind != "PrometheusRule" {
		t.Errorf("kind %q, want PrometheusRule", rule.Kind)
	}
	if len(file.Spec["groups"].([]any)) == 0 {
		t.Fatal("the rule file has no groups")
	}
	if !reflect.DeepEqual(rule.Spec, file.Spec) {
		t.Errorf("spec differs from the rule file:\n%v\nwant\n%v", rule.Spec, file.Spec)
	}
}
