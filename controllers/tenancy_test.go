package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/controllers/problemevent"
)

// serviceAccount creates a ServiceAccount in ns that may do verbs on Jobs
// there, and nothing else.
func serviceAccount(t *testing.T, ns, name string, verbs ...string) {
	t.Helper()
	ctx := context.Background()
	g := NewWithT(t)
	g.Expect(k8s.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})).To(Succeed())
	if len(verbs) == 0 {
		return
	}
	g.Expect(k8s.Create(ctx, &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: verbs}}})).To(Succeed())
	g.Expect(k8s.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: name}},
	})).To(Succeed())
}

// A route's Jobs are checked, created and deleted as the ServiceAccount it
// names: what the ServiceAccount may not do, the route may not either.
func TestRouteJobsRunAsItsServiceAccount(t *testing.T) {
	f := newFixture(t)
	serviceAccount(t, f.ns, "runner")
	action := jobAction(t, "incident", false, 1)
	ir := f.route("legacy", problemhookv1alpha1.RouteMatch{}, action)
	updateRoute(f.g, ir, func(ir *problemhookv1alpha1.IntegrationRoute) { ir.Spec.ServiceAccountName = "runner" })
	msg := routeReady(t, ir, metav1.ConditionFalse, problemhookv1alpha1.ReasonJobsForbidden)
	f.g.Expect(msg).To(Equal(`ServiceAccount ` + f.ns + `/runner (spec.serviceAccountName) may not create the Jobs of action incident: ` +
		`jobs.batch is forbidden: User "system:serviceaccount:` + f.ns + `:runner" cannot create resource "jobs" in API group "batch" in the namespace "` + f.ns + `"`))

	// An event while the ServiceAccount may not create Jobs: its run fails,
	// saying who may not do what, and nothing is created.
	open := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "P-1", State: problemhookv1alpha1.StateOpen, Title: "CPU"})
	f.eventually(open, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(HaveExactElements(And(
			HaveField("State", problemhookv1alpha1.ActionFailed),
			HaveField("Message", And(
				HavePrefix(`IntegrationRoute legacy action incident: ServiceAccount `+f.ns+`/runner (spec.serviceAccountName) may not create Job `),
				HaveSuffix(`jobs.batch is forbidden: User "system:serviceaccount:`+f.ns+`:runner" cannot create resource "jobs" in API group "batch" in the namespace "`+f.ns+`"; no Job was created`))),
		)))
	})
	f.g.Expect(f.jobs(f.g)).To(BeEmpty())

	// Allowed to create Jobs but not to delete them: the route is Ready (a
	// change to the route checks it again at once), its Jobs run, and a
	// RESOLVED cannot stop them.
	grant := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "runner"},
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{"batch"}, Resources: []string{"jobs"}, Verbs: []string{"create"}}}}
	f.create(grant)
	f.create(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: "runner"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "runner"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: f.ns, Name: "runner"}}})
	updateRoute(f.g, ir, func(ir *problemhookv1alpha1.IntegrationRoute) {
		ir.Spec.Match.States = []problemhookv1alpha1.ProblemState{problemhookv1alpha1.StateOpen}
	})
	routeReady(t, ir, metav1.ConditionTrue, problemhookv1alpha1.ReasonReady)

	const pid2 = "-1_2V2"
	open = f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid2, DisplayID: "P-2", State: problemhookv1alpha1.StateOpen, Title: "CPU"})
	jobs := f.waitJobs(1)
	f.g.Expect(jobs[0].OwnerReferences).To(HaveExactElements(And(HaveField("Name", open.Name), HaveField("BlockOwnerDeletion", BeNil()))),
		"a ServiceAccount need not be allowed to block its owner's deletion")
	f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid2, DisplayID: "P-2", State: problemhookv1alpha1.StateResolved, Title: "CPU"})
	f.eventually(open, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(HaveExactElements(And(
			HaveField("State", problemhookv1alpha1.ActionFailed),
			HaveField("Message", HavePrefix(`Not stopped: the problem resolved (ProblemEvent `)),
			HaveField("Message", ContainSubstring(`; ServiceAccount `+f.ns+`/runner (spec.serviceAccountName) may not delete Job `+jobs[0].Name+`: `+
				`jobs.batch "`+jobs[0].Name+`" is forbidden: User "system:serviceaccount:`+f.ns+`:runner" cannot delete resource "jobs"`)),
			HaveField("Message", HaveSuffix("; it runs on")),
		)))
	})
	f.g.Expect(f.jobs(f.g)).To(HaveLen(1), "the Job runs on")
}

// --default-service-account gives the Jobs of a route that names no
// ServiceAccount that ServiceAccount's rights, not the operator's.
func TestDefaultServiceAccountLocksDown(t *testing.T) {
	f := newFixture(t)
	f.stop()
	f.stop, f.receiver = startEventManager(t, f.ns, func(r *problemevent.Reconciler) {
		r.Jobs.DefaultServiceAccount = "problemhook-jobs"
	})
	f.route("legacy", problemhookv1alpha1.RouteMatch{}, jobAction(t, "incident", false, 1))
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "P-1", State: problemhookv1alpha1.StateOpen, Title: "CPU"})
	f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(HaveExactElements(HaveField("Message", ContainSubstring(
			`: ServiceAccount `+f.ns+`/problemhook-jobs (the manager's --default-service-account) may not create Job `))))
	})
	f.g.Expect(f.jobs(f.g)).To(BeEmpty())

	serviceAccount(t, f.ns, "problemhook-jobs", "create", "delete")
	ev = f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "-2_2V2", DisplayID: "P-2", State: problemhookv1alpha1.StateOpen, Title: "CPU"})
	f.g.Expect(f.waitJobs(1)[0].Labels).To(HaveKeyWithValue(problemhookv1alpha1.LabelEvent, ev.Name))
}

// A Job template that asks for the node is refused, by the route's Ready
// condition and again when it would run, unless the operator allows it.
func TestPrivilegedJobTemplatesAreRefused(t *testing.T) {
	f := newFixture(t)
	privileged := problemhookv1alpha1.Action{Name: "debug", Job: &problemhookv1alpha1.JobAction{Template: jobTemplate(t, func(j *batchv1.JobTemplateSpec) {
		spec := &j.Spec.Template.Spec
		spec.HostPID = true
		spec.Volumes = []corev1.Volume{{Name: "root", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}}
		spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: new(true), AllowPrivilegeEscalation: new(true)}
	})}}
	ir := f.route("debug", problemhookv1alpha1.RouteMatch{}, privileged)
	const fields = "spec.actions[0].job.template.spec.template.spec.hostPID, spec.actions[0].job.template.spec.template.spec.volumes[0].hostPath, " +
		"spec.actions[0].job.template.spec.template.spec.containers[0].securityContext.privileged"
	f.g.Expect(routeReady(t, ir, metav1.ConditionFalse, problemhookv1alpha1.ReasonPrivilegedJobTemplate)).To(Equal(
		fields + ": the Pod asks for the node, which this operator does not allow (--allow-privileged-jobs)"))

	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "P-1", State: problemhookv1alpha1.StateOpen, Title: "CPU"})
	f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(HaveExactElements(And(HaveField("State", problemhookv1alpha1.ActionFailed), HaveField("Message",
			"IntegrationRoute debug action debug: job.template.spec.template.spec.hostPID, job.template.spec.template.spec.volumes[0].hostPath, "+
				"job.template.spec.template.spec.containers[0].securityContext.privileged: the Pod asks for the node, which this operator does not allow (--allow-privileged-jobs)"))))
	})
	f.g.Consistently(func(g Gomega) { g.Expect(f.jobs(g)).To(BeEmpty()) }).WithTimeout(500 * time.Millisecond).Should(Succeed())

	// With --allow-privileged-jobs, the same route runs.
	f.stop()
	f.stop, f.receiver = startEventManager(t, f.ns, func(r *problemevent.Reconciler) { r.Jobs.AllowPrivileged = true })
	ev = f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "-2_2V2", DisplayID: "P-2", State: problemhookv1alpha1.StateOpen, Title: "CPU"})
	f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(HaveExactElements(HaveField("State", problemhookv1alpha1.ActionRunning)))
	})
	f.g.Expect(f.waitJobs(1)[0].Spec.Template.Spec.HostPID).To(BeTrue())
}

// Calls made for a tenant go nowhere the egress policy refuses, however
// the URL names the destination, and are not retried.
func TestEgressPolicyRefusesMetadataAddresses(t *testing.T) {
	f := newFixture(t)
	f.route("exfiltrate", problemhookv1alpha1.RouteMatch{}, problemhookv1alpha1.Action{Name: "metadata", HTTP: &problemhookv1alpha1.HTTPAction{
		URL: "http://169.254.169.254/latest/meta-data/iam/security-credentials/", Body: "{{ .Title }}",
	}})
	ev := f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: pid, DisplayID: "P-1", State: problemhookv1alpha1.StateOpen, Title: "CPU"})
	f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Actions).To(HaveExactElements(And(
			HaveField("State", problemhookv1alpha1.ActionFailed),
			HaveField("Attempts", int32(1)),
			HaveField("Message", `Failed: Calling http://169.254.169.254/latest/meta-data/iam/security-credentials/: `+
				`destination 169.254.169.254 is not allowed by problemhook's egress policy (link-local, where cloud metadata services answer)`),
		)))
	})

	// A Dynatrace connection to the same address is refused as well.
	var target problemhookv1alpha1.NotificationTarget
	f.g.Expect(k8s.Get(f.ctx, client.ObjectKeyFromObject(f.target), &target)).To(Succeed())
	target.Spec.Dynatrace.URL = "http://169.254.169.254/e/abc"
	f.g.Expect(k8s.Update(f.ctx, &target)).To(Succeed())
	ev = f.event(problemhookv1alpha1.ProblemEventSpec{ProblemID: "-2_2V2", DisplayID: "P-2", State: problemhookv1alpha1.StateOpen, Title: "CPU"})
	f.eventually(ev, func(g Gomega, ev *problemhookv1alpha1.ProblemEvent) {
		g.Expect(ev.Status.Conditions).To(ContainElement(And(
			HaveField("Type", problemhookv1alpha1.ConditionEnriched),
			HaveField("Status", metav1.ConditionFalse),
			HaveField("Message", ContainSubstring("destination 169.254.169.254 is not allowed by problemhook's egress policy")),
		)))
	})
}
