package routing_test

import (
	"errors"
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/runtime"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/routing"
)

func TestJobTemplate(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want string // error substring; "" for none
	}{
		{name: "valid", raw: validJob},
		{name: "valid with metadata, limits and quantities", raw: `{
			"metadata": {"labels": {"app": "legacy"}},
			"spec": {"backoffLimit": 2, "ttlSecondsAfterFinished": 3600, "template": {"spec": {
				"restartPolicy": "Never", "serviceAccountName": "legacy",
				"containers": [{"name": "legacy", "image": "registry.example/legacy:1",
					"resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
					"env": [{"name": "MODE", "value": "incident"}]}]}}}}`},
		{name: "unknown field", raw: `{"spec":{"template":{"spec":{"restartPolicy":"Never","container":{"name":"a","image":"b"}}}}}`,
			want: `unknown field "spec.template.spec.container"`},
		{name: "two unknown fields", raw: `{"spek":{},"metadata":{"lables":{}}}`,
			want: `unknown field "spek"; unknown field "metadata.lables"`},
		{name: "field names are case-sensitive", raw: `{"Spec":{"template":{"spec":{"containers":[{"name":"a","image":"b"}]}}}}`,
			want: `unknown field "Spec"`},
		{name: "duplicate field", raw: `{"spec":{"template":{"spec":{"containers":[{"name":"a","image":"b","image":"c"}]}}}}`,
			want: `duplicate field "spec.template.spec.containers[0].image"`},
		{name: "array", raw: `[{"spec":{}}]`, want: "must be an object"},
		{name: "string", raw: `"job"`, want: "must be an object"},
		{name: "number", raw: `42`, want: "must be an object"},
		{name: "empty", raw: ``, want: "a Job template is required"},
		{name: "null", raw: ` null `, want: "a Job template is required"},
		{name: "malformed", raw: `{"spec":`, want: "decoding Job template"},
		{name: "wrong type", raw: `{"spec":{"parallelism":"five"}}`, want: "decoding Job template"},
		{name: "no container", raw: `{"spec":{"template":{"spec":{"restartPolicy":"Never"}}}}`,
			want: "spec.template.spec.containers: at least one container is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			job, err := routing.JobTemplate([]byte(tt.raw))
			if tt.want != "" {
				g.Expect(err).To(MatchError(ContainSubstring(tt.want)))
				g.Expect(job).To(BeNil())
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(job.Spec.Template.Spec.Containers).NotTo(BeEmpty())
			g.Expect(job.Spec.Template.Spec.Containers[0].Image).To(Equal("registry.example/legacy:1"))
		})
	}
}

func TestCompileJobTemplate(t *testing.T) {
	tests := []struct {
		name     string
		template runtime.RawExtension
		want     string
	}{
		{name: "unknown field", template: runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"spec":{"initContainer":[]}}}}`)},
			want: `spec.actions[1].job.template: unknown field "spec.template.spec.initContainer"`},
		{name: "missing", want: "spec.actions[1].job.template: a Job template is required"},
		{name: "not an object", template: runtime.RawExtension{Raw: []byte(`"image: x"`)},
			want: "spec.actions[1].job.template: must be an object, a batch/v1 JobTemplateSpec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := compileActions(twilioAction("{{.Title}}"), problemhookv1alpha1.Action{
				Name: "run", Job: &problemhookv1alpha1.JobAction{Template: tt.template},
			})
			var fe *routing.FieldError
			g.Expect(errors.As(err, &fe)).To(BeTrue(), "error %v", err)
			g.Expect(fe.Field).To(Equal("spec.actions[1].job.template"))
			g.Expect(fe.Reason).To(Equal(problemhookv1alpha1.ReasonInvalidJobTemplate))
			g.Expect(err).To(MatchError(tt.want))
		})
	}
}
