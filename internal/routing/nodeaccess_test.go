package routing_test

import (
	"slices"
	"testing"

	"github.com/problemhook/problemhook/internal/routing"
)

func TestNodeAccess(t *testing.T) {
	for _, tc := range []struct {
		name, template string
		want           []string
	}{{
		name:     "a plain container asks for nothing, NET_BIND_SERVICE included",
		template: `{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox","securityContext":{"privileged":false,"capabilities":{"drop":["ALL"],"add":["NET_BIND_SERVICE"]}}}]}}}}`,
	}, {
		name:     "host namespaces",
		template: `{"spec":{"template":{"spec":{"hostPID":true,"hostIPC":true,"hostNetwork":true,"containers":[{"name":"c","image":"busybox"}]}}}}`,
		want:     []string{"spec.template.spec.hostPID", "spec.template.spec.hostIPC", "spec.template.spec.hostNetwork"},
	}, {
		name:     "a hostPath volume among others",
		template: `{"spec":{"template":{"spec":{"volumes":[{"name":"tmp","emptyDir":{}},{"name":"root","hostPath":{"path":"/"}}],"containers":[{"name":"c","image":"busybox"}]}}}}`,
		want:     []string{"spec.template.spec.volumes[1].hostPath"},
	}, {
		name: "privileged, capabilities and host ports, init containers too",
		template: `{"spec":{"template":{"spec":{
			"initContainers":[{"name":"i","image":"busybox","securityContext":{"capabilities":{"add":["SYS_ADMIN"]}}}],
			"containers":[{"name":"a","image":"busybox"},{"name":"b","image":"busybox","securityContext":{"privileged":true},"ports":[{"containerPort":80},{"containerPort":22,"hostPort":22}]}]}}}}`,
		want: []string{
			"spec.template.spec.initContainers[0].securityContext.capabilities.add",
			"spec.template.spec.containers[1].securityContext.privileged",
			"spec.template.spec.containers[1].ports[1].hostPort",
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := routing.JobTemplate([]byte(tc.template))
			if err != nil {
				t.Fatal(err)
			}
			if got := routing.NodeAccess(tmpl); !slices.Equal(got, tc.want) {
				t.Errorf("NodeAccess = %q, want %q", got, tc.want)
			}
		})
	}
}
