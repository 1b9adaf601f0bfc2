package routing

import (
	"fmt"
	"slices"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// NodeAccess lists the fields of a Job template that ask for the node
// itself rather than a container on it: privileged containers, added
// capabilities (but NET_BIND_SERVICE, which even the restricted Pod
// Security profile allows), the host's PID, IPC or network namespace, its
// ports, or a hostPath volume. Each is a path under the template, as in
// "spec.template.spec.containers[0].securityContext.privileged". A route
// author who may not run such a Pod must not get one through problemhook,
// whatever the namespace's Pod Security level allows.
func NodeAccess(t *batchv1.JobTemplateSpec) []string {
	const pod = "spec.template.spec"
	spec := &t.Spec.Template.Spec
	var fields []string
	for _, f := range []struct {
		set  bool
		name string
	}{{spec.HostPID, "hostPID"}, {spec.HostIPC, "hostIPC"}, {spec.HostNetwork, "hostNetwork"}} {
		if f.set {
			fields = append(fields, pod+"."+f.name)
		}
	}
	for i, v := range spec.Volumes {
		if v.HostPath != nil {
			fields = append(fields, fmt.Sprintf("%s.volumes[%d].hostPath", pod, i))
		}
	}
	containers := func(kind string, cs []corev1.Container) {
		for i, c := range cs {
			at := fmt.Sprintf("%s.%s[%d]", pod, kind, i)
			if sc := c.SecurityContext; sc != nil {
				if sc.Privileged != nil && *sc.Privileged {
					fields = append(fields, at+".securityContext.privileged")
				}
				if sc.Capabilities != nil && slices.ContainsFunc(sc.Capabilities.Add, func(c corev1.Capability) bool { return c != "NET_BIND_SERVICE" }) {
					fields = append(fields, at+".securityContext.capabilities.add")
				}
			}
			for j, p := range c.Ports {
				if p.HostPort != 0 {
					fields = append(fields, fmt.Sprintf("%s.ports[%d].hostPort", at, j))
				}
			}
		}
	}
	containers("initContainers", spec.InitContainers)
	containers("containers", spec.Containers)
	return fields
}
