package routing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime"
	sigsjson "sigs.k8s.io/json"
)

// JobTemplate decodes a route's Job template, the raw JSON of
// spec.actions[i].job.template, as a batch/v1 JobTemplateSpec, strictly: as
// the API server would, it refuses an unknown or duplicated field, naming it
// (unknown field "spec.template.spec.container"), and field names are
// case-sensitive. A template must be an object with at least one container.
func JobTemplate(raw []byte) (*batchv1.JobTemplateSpec, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, errors.New("a Job template is required")
	}
	if raw[0] != '{' {
		return nil, errors.New("must be an object, a batch/v1 JobTemplateSpec")
	}
	var t batchv1.JobTemplateSpec
	strictErrs, err := sigsjson.UnmarshalStrict(raw, &t)
	if err != nil {
		return nil, fmt.Errorf("decoding Job template: %w", err)
	}
	if len(strictErrs) > 0 {
		msgs := make([]string, 0, len(strictErrs))
		for _, e := range strictErrs {
			msgs = append(msgs, e.Error())
		}
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	if len(t.Spec.Template.Spec.Containers) == 0 {
		return nil, errors.New("spec.template.spec.containers: at least one container is required")
	}
	return &t, nil
}

// rawTemplate returns the JSON of a Job template, which is raw when it was
// decoded and an object when it was built in Go.
func rawTemplate(ext *runtime.RawExtension) []byte {
	if len(ext.Raw) > 0 || ext.Object == nil {
		return ext.Raw
	}
	raw, err := json.Marshal(ext.Object)
	if err != nil {
		return nil // reported as a missing template
	}
	return raw
}
