// Package default_test holds dist/install.yaml, the rendering of
// config/default, to what it promises: valid objects that a real API
// server accepts, a manager Pod that passes the restricted Pod Security
// profile, and RBAC that lets the manager do its work and nothing more.
package default_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	flowcontrolv1 "k8s.io/api/flowcontrol/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/test/harness/controlplane"
	"github.com/problemhook/problemhook/test/harness/manifests"
)

const (
	systemNamespace = "problemhook-system"
	serviceAccount  = "system:serviceaccount:" + systemNamespace + ":problemhook-controller-manager"
)

var (
	env *controlplane.TestEnv
	k8s client.Client
)

func TestMain(m *testing.M) {
	os.Exit(controlplane.RunTests(m, func(_ context.Context, e *controlplane.TestEnv) (ctrl.Manager, error) {
		env, k8s = e, e.Client
		return nil, nil
	}))
}

// install applies dist/install.yaml, after decoding every object strictly
// into its Go type: a field its kind does not have fails the test.
func install(t *testing.T) map[string]runtime.Object {
	t.Helper()
	g := NewWithT(t)
	data, err := os.ReadFile(filepath.Join(controlplane.RepoRoot(), "dist", "install.yaml"))
	g.Expect(err).NotTo(HaveOccurred(), "make build-installer renders dist/install.yaml")
	objs, err := manifests.Decode(data)
	g.Expect(err).NotTo(HaveOccurred())

	scheme := runtime.NewScheme()
	g.Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	g.Expect(apiextensionsv1.AddToScheme(scheme)).To(Succeed())
	typed := map[string]runtime.Object{}
	for _, o := range objs {
		obj, err := scheme.New(o.GroupVersionKind())
		g.Expect(err).NotTo(HaveOccurred(), "%s is a kind the API machinery knows", o.GroupVersionKind())
		g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, obj, true)).
			To(Succeed(), "%s %s decodes strictly", o.GetKind(), o.GetName())
		typed[o.GetKind()+"/"+o.GetName()] = obj
	}
	g.Expect(manifests.Apply(context.Background(), env.Config, objs)).To(Succeed())
	return typed
}

func TestInstall(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	objs := install(t)

	names := make([]string, 0, len(objs))
	for k := range objs {
		names = append(names, k)
	}
	g.Expect(names).To(ConsistOf(
		"Namespace/problemhook-system",
		"CustomResourceDefinition/notificationtargets.problemhook.io",
		"CustomResourceDefinition/integrationroutes.problemhook.io",
		"CustomResourceDefinition/problemevents.problemhook.io",
		"ServiceAccount/problemhook-controller-manager",
		"ClusterRole/problemhook-manager-role",
		"ClusterRoleBinding/problemhook-manager-rolebinding",
		"Role/problemhook-leader-election-role",
		"RoleBinding/problemhook-leader-election-rolebinding",
		"Role/problemhook-dashboard-role",
		"RoleBinding/problemhook-dashboard-rolebinding",
		"Deployment/problemhook-controller-manager",
		"Service/problemhook-receiver",
		"Service/problemhook-metrics",
		"PodDisruptionBudget/problemhook-controller-manager",
		"NetworkPolicy/problemhook-controller-manager",
		"FlowSchema/problemhook-leader-election",
		"ClusterRole/problemhook-metrics-auth-role",
		"ClusterRoleBinding/problemhook-metrics-auth-rolebinding",
		"ClusterRole/problemhook-metrics-reader",
		"ValidatingAdmissionPolicy/problemhook-integrationroute-author",
		"ValidatingAdmissionPolicyBinding/problemhook-integrationroute-author",
		"ValidatingAdmissionPolicy/problemhook-notificationtarget-author",
		"ValidatingAdmissionPolicyBinding/problemhook-notificationtarget-author",
		"ValidatingAdmissionPolicy/problemhook-problemevent-rerun",
		"ValidatingAdmissionPolicyBinding/problemhook-problemevent-rerun",
		"ValidatingAdmissionPolicy/problemhook-problemevent-approve",
		"ValidatingAdmissionPolicyBinding/problemhook-problemevent-approve",
	))
	deploy := objs["Deployment/problemhook-controller-manager"].(*appsv1.Deployment)
	g.Expect(*deploy.Spec.Replicas).To(Equal(int32(2)))
	g.Expect(deploy.Spec.Template.Spec.Containers[0].Args).To(ContainElement("--leader-elect"))
	receiver := objs["Service/problemhook-receiver"].(*corev1.Service)
	g.Expect(receiver.Spec.Ports).To(ConsistOf(HaveField("Port", int32(9292))))

	// The manager's Pod is admitted where the restricted profile is enforced,
	// and the same Pod allowed to escalate privileges is not.
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, GenerateName: "manager-"}, Spec: deploy.Spec.Template.Spec}
	g.Expect(k8s.Create(ctx, pod.DeepCopy(), client.DryRunAll)).To(Succeed())
	loose := pod.DeepCopy()
	loose.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = new(true)
	g.Expect(k8s.Create(ctx, loose, client.DryRunAll)).To(MatchError(ContainSubstring("violates PodSecurity \"restricted:latest\"")))
}

// The manager's Lease requests get the API server's leader-election
// priority level, as the control plane's controllers' do, and not the one
// its receiver's ProblemEvent creates share with every other workload: a
// storm of notifications does not starve the leader's renewals.
func TestLeaseRenewalsHaveTheirOwnPriority(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	install(t)
	var schema flowcontrolv1.FlowSchema
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: "problemhook-leader-election"}, &schema)).To(Succeed())
	g.Expect(schema.Namespace).To(BeEmpty(), "a FlowSchema is cluster-scoped")

	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: serviceAccount}
	httpClient, err := rest.HTTPClientFor(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	// classify sends a request as the manager's ServiceAccount and returns
	// the FlowSchema and priority level the API server put it in.
	classify := func(method, path, body string) (flowSchema, priorityLevel string) {
		req, err := http.NewRequestWithContext(ctx, method, cfg.Host+path, strings.NewReader(body))
		g.Expect(err).NotTo(HaveOccurred())
		req.Header.Set("Content-Type", "application/json")
		resp, err := httpClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		return resp.Header.Get("X-Kubernetes-PF-FlowSchema-UID"), resp.Header.Get("X-Kubernetes-PF-PriorityLevel-UID")
	}
	leaseSchema, leaseLevel := classify(http.MethodGet, "/apis/coordination.k8s.io/v1/namespaces/"+systemNamespace+"/leases/problemhook.problemhook.io", "")
	g.Expect(leaseSchema).To(Equal(string(schema.UID)))
	var level flowcontrolv1.PriorityLevelConfiguration
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: "leader-election"}, &level)).To(Succeed())
	g.Expect(leaseLevel).To(Equal(string(level.UID)))

	ns := controlplane.NewNamespace(t, k8s, "priority")
	eventSchema, eventLevel := classify(http.MethodPost, "/apis/problemhook.io/v1alpha1/namespaces/"+ns+"/problemevents", `{}`)
	g.Expect(eventSchema).NotTo(BeEmpty())
	g.Expect(eventSchema).NotTo(Equal(leaseSchema))
	g.Expect(eventLevel).NotTo(Equal(leaseLevel))
}

// TestManagerRunsAsItsServiceAccount runs the manager binary with the
// identity of its ServiceAccount, under the RBAC of dist/install.yaml: it
// receives a notification and runs a route's Job, never refused. Then the
// API server is asked what else that identity may do: nothing more.
func TestManagerRunsAsItsServiceAccount(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	install(t)
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	g.Expect(env.WriteUserKubeconfig(kubeconfig, serviceAccount,
		"system:serviceaccounts", "system:serviceaccounts:"+systemNamespace, "system:authenticated")).To(Succeed())

	receiverAddr, probeAddr, metricsAddr, dashboardAddr := controlplane.FreeAddr(t), controlplane.FreeAddr(t), controlplane.FreeAddr(t), controlplane.FreeAddr(t)
	var logs controlplane.SyncBuffer
	cmd := exec.Command(controlplane.BuildManager(t), "--kubeconfig", kubeconfig, "--leader-elect",
		"--receiver-bind-address", receiverAddr, "--health-probe-bind-address", probeAddr, "--metrics-bind-address", metricsAddr,
		"--dashboard-bind-address", dashboardAddr)
	cmd.Env = append(os.Environ(), "POD_NAMESPACE="+systemNamespace)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	g.Expect(cmd.Start()).To(Succeed())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("manager logs:\n%s", logs.String())
		}
	})

	ns := controlplane.NewNamespace(t, k8s, "install")
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "webhook-auth"},
		Data: map[string][]byte{"username": []byte("dynatrace"), "password": []byte("secret")}})).To(Succeed())
	nt := &problemhookv1alpha1.NotificationTarget{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "dynatrace"},
		Spec: problemhookv1alpha1.NotificationTargetSpec{Format: problemhookv1alpha1.FormatDynatrace, Auth: problemhookv1alpha1.WebhookAuth{
			Basic: &problemhookv1alpha1.BasicAuth{SecretRef: problemhookv1alpha1.LocalObjectReference{Name: "webhook-auth"}},
		}},
	}
	g.Expect(k8s.Create(ctx, nt)).To(Succeed())
	ir := &problemhookv1alpha1.IntegrationRoute{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "legacy"},
		Spec: problemhookv1alpha1.IntegrationRouteSpec{Actions: []problemhookv1alpha1.Action{{Name: "incident", Job: &problemhookv1alpha1.JobAction{
			Template: runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"legacy","image":"busybox:1.36","args":["$(PROBLEM_ID)"]}]}}}}`)},
		}}}},
	}
	g.Expect(k8s.Create(ctx, ir)).To(Succeed())

	// Target and route Ready: Secrets read, the Job template dry-run.
	for _, obj := range []client.Object{nt, ir} {
		g.Eventually(func(g Gomega) {
			g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
			var conds []metav1.Condition
			switch o := obj.(type) {
			case *problemhookv1alpha1.NotificationTarget:
				conds = o.Status.Conditions
			case *problemhookv1alpha1.IntegrationRoute:
				conds = o.Status.Conditions
			}
			g.Expect(conds).To(ContainElement(And(HaveField("Type", "Ready"), HaveField("Status", metav1.ConditionTrue))))
		}).WithTimeout(60 * time.Second).Should(Succeed())
	}

	// A notification: stored by the receiver, a Job created, its end recorded.
	post := func(problem string) func() (int, error) {
		return func() (int, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, fmt.Sprintf("http://%s/hooks/%s/dynatrace", receiverAddr, ns),
				strings.NewReader(fmt.Sprintf(`{"State":"OPEN","ProblemID":"%s","PID":"%s_%sV2"}`, problem, problem, problem)))
			if err != nil {
				return 0, err
			}
			req.SetBasicAuth("dynatrace", "secret")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, err
			}
			_ = resp.Body.Close()
			return resp.StatusCode, nil
		}
	}
	g.Eventually(post("1")).WithTimeout(30 * time.Second).Should(Equal(http.StatusAccepted))
	var job batchv1.Job
	g.Eventually(func(g Gomega) {
		var jobs batchv1.JobList
		g.Expect(k8s.List(ctx, &jobs, client.InNamespace(ns))).To(Succeed())
		g.Expect(jobs.Items).To(HaveLen(1))
		job = jobs.Items[0]
	}).WithTimeout(30 * time.Second).Should(Succeed())
	now := metav1.Now()
	job.Status = batchv1.JobStatus{StartTime: &now, Failed: 1, Conditions: []batchv1.JobCondition{
		{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now},
		{Type: batchv1.JobFailed, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded", LastTransitionTime: now},
	}}
	g.Expect(k8s.Status().Update(ctx, &job)).To(Succeed())
	g.Eventually(func(g Gomega) {
		var events problemhookv1alpha1.ProblemEventList
		g.Expect(k8s.List(ctx, &events, client.InNamespace(ns))).To(Succeed())
		g.Expect(events.Items).To(HaveLen(1))
		g.Expect(events.Items[0].Status.Phase).To(Equal(problemhookv1alpha1.PhaseFailed))
		var recorded eventsv1.EventList
		g.Expect(k8s.List(ctx, &recorded, client.InNamespace(ns))).To(Succeed())
		g.Expect(recorded.Items).To(ContainElement(HaveField("Reason", "JobsCreated")))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	// The metrics endpoint serves HTTPS (a self-signed certificate) to
	// callers the API server authenticates and allows to get /metrics.
	scrape := func(token string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+metricsAddr+"/metrics", nil)
		if err != nil {
			return 0, "", err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		insecure := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the manager's self-signed certificate
		resp, err := insecure.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	// A token of each of two ServiceAccounts, one bound to the ClusterRole
	// a Prometheus needs. (The filter caches a refusal for a while, so the
	// same token is not first refused, then bound.)
	token := func(name string) string {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		g.Expect(k8s.Create(ctx, sa)).To(Succeed())
		tr := &authenticationv1.TokenRequest{}
		g.Expect(k8s.SubResource("token").Create(ctx, sa, tr)).To(Succeed())
		return tr.Status.Token
	}
	intruder, prometheus := token("intruder"), token("prometheus")
	g.Expect(k8s.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-prometheus"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "problemhook-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: ns, Name: "prometheus"}},
	})).To(Succeed())
	g.Eventually(func() (int, error) { code, _, err := scrape(""); return code, err }).Should(Equal(http.StatusUnauthorized))
	code, body, err := scrape(intruder)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusForbidden), "a ServiceAccount not bound to problemhook-metrics-reader: %s", body)
	// The metrics count what happened; a run is counted once its settling
	// is stored, a moment after the status read above.
	g.Eventually(func(g Gomega) {
		code, exposition, err := scrape(prometheus)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusOK))
		g.Expect(exposition).To(And(
			ContainSubstring(`problemhook_receiver_notifications_total{format="Dynatrace",namespace="`+ns+`",result="created",target="dynatrace"} 1`),
			ContainSubstring(`problemhook_actions_total{namespace="`+ns+`",result="failed",route="legacy",type="Job"} 1`),
			ContainSubstring(`problemhook_receiver_store_duration_seconds_count 1`),
		))
	}).WithTimeout(10 * time.Second).Should(Succeed())

	// The dashboard reads what it shows under the same identity.
	resp, err := http.Get("http://" + dashboardAddr + "/api/overview")
	g.Expect(err).NotTo(HaveOccurred())
	overview, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK), string(overview))
	g.Expect(string(overview)).To(ContainSubstring(`"replicasNote":"Service problemhook-system/problemhook-receiver has no endpoints: outside a cluster, only this process receives."`))
	resp, err = http.Get("http://" + dashboardAddr + "/api/events?target=" + ns + "/dynatrace")
	g.Expect(err).NotTo(HaveOccurred())
	listed, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(listed)).To(ContainSubstring(`"total":1`))

	var lease coordinationv1.Lease
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: "problemhook.problemhook.io"}, &lease)).To(Succeed())
	g.Expect(logs.String()).NotTo(ContainSubstring("forbidden"))

	// What the manager does, it may; and nothing beyond.
	allowed := []authorizationv1.ResourceAttributes{
		{Verb: "watch", Group: "problemhook.io", Resource: "notificationtargets"},
		{Verb: "patch", Group: "problemhook.io", Resource: "notificationtargets", Subresource: "status", Namespace: ns},
		{Verb: "create", Group: "problemhook.io", Resource: "problemevents", Namespace: ns},
		{Verb: "delete", Group: "problemhook.io", Resource: "problemevents", Namespace: ns},
		{Verb: "patch", Group: "problemhook.io", Resource: "problemevents", Subresource: "status", Namespace: ns},
		{Verb: "watch", Group: "problemhook.io", Resource: "integrationroutes"},
		{Verb: "create", Group: "batch", Resource: "jobs", Namespace: ns},
		{Verb: "delete", Group: "batch", Resource: "jobs", Namespace: ns},
		{Verb: "list", Resource: "pods", Namespace: ns},
		{Verb: "watch", Resource: "secrets"},
		{Verb: "create", Group: "events.k8s.io", Resource: "events", Namespace: ns},
		{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: systemNamespace},
		{Verb: "list", Group: "discovery.k8s.io", Resource: "endpointslices", Namespace: systemNamespace},
		{Verb: "impersonate", Resource: "serviceaccounts", Namespace: ns, Name: "runner"},
		{Verb: "get", Resource: "pods", Subresource: "log", Namespace: ns},
		{Verb: "patch", Group: "problemhook.io", Resource: "notificationtargets", Namespace: ns},
		{Verb: "create", Group: "authentication.k8s.io", Resource: "tokenreviews"},
		{Verb: "create", Group: "authorization.k8s.io", Resource: "subjectaccessreviews"},
	}
	denied := []authorizationv1.ResourceAttributes{
		{Verb: "create", Resource: "secrets", Namespace: ns},
		{Verb: "update", Resource: "secrets", Namespace: ns},
		{Verb: "delete", Resource: "secrets", Namespace: ns},
		{Verb: "create", Resource: "pods", Namespace: ns},
		{Verb: "delete", Resource: "pods", Namespace: ns},
		{Verb: "get", Resource: "configmaps", Namespace: ns},
		{Verb: "create", Resource: "serviceaccounts", Namespace: ns},
		{Verb: "update", Group: "apps", Resource: "deployments", Namespace: systemNamespace},
		{Verb: "update", Group: "batch", Resource: "jobs", Namespace: ns},
		{Verb: "create", Group: "problemhook.io", Resource: "notificationtargets", Namespace: ns},
		{Verb: "update", Group: "problemhook.io", Resource: "notificationtargets", Namespace: ns},
		{Verb: "delete", Group: "problemhook.io", Resource: "integrationroutes", Namespace: ns},
		{Verb: "update", Group: "problemhook.io", Resource: "problemevents", Namespace: ns},
		// Status is patched, never replaced; the registration finalizer is
		// patched onto the target, and nothing the manager creates blocks
		// a target's deletion.
		{Verb: "update", Group: "problemhook.io", Resource: "problemevents", Subresource: "status", Namespace: ns},
		{Verb: "update", Group: "problemhook.io", Resource: "notificationtargets", Subresource: "finalizers", Namespace: ns},
		{Verb: "update", Group: "coordination.k8s.io", Resource: "leases", Namespace: ns},
		{Verb: "delete", Group: "coordination.k8s.io", Resource: "leases", Namespace: systemNamespace},
		{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"},
		{Verb: "impersonate", Resource: "users"},
		{Verb: "list", Group: "discovery.k8s.io", Resource: "endpointslices", Namespace: ns},
	}
	for _, want := range []struct {
		attrs   []authorizationv1.ResourceAttributes
		allowed bool
	}{{allowed, true}, {denied, false}} {
		for _, attrs := range want.attrs {
			review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User: serviceAccount, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + systemNamespace, "system:authenticated"},
				ResourceAttributes: &attrs,
			}}
			g.Expect(k8s.Create(ctx, review)).To(Succeed())
			g.Expect(review.Status.Allowed).To(Equal(want.allowed), "%s %s/%s %s in %q", attrs.Verb, attrs.Group, attrs.Resource, attrs.Subresource, attrs.Namespace)
		}
	}

	// Losing the lease ends the leader's term, not the process: another
	// holder takes the Lease (as a replica whose API server answered
	// first would), this replica's reconcilers stop and its receiver goes
	// on storing notifications; once the Lease is free again it leads again
	// and runs what was stored meanwhile.
	g.Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(&lease), &lease); err != nil {
			return err
		}
		now := metav1.NewMicroTime(time.Now())
		lease.Spec.HolderIdentity, lease.Spec.AcquireTime, lease.Spec.RenewTime = new("another-replica"), &now, &now
		return k8s.Update(ctx, &lease)
	})).To(Succeed())
	g.Eventually(logs.String).WithTimeout(30 * time.Second).Should(ContainSubstring("Lost the leader lease"))
	g.Expect(cmd.ProcessState).To(BeNil(), "the manager is still running")
	g.Expect(post("2")()).To(Equal(http.StatusAccepted), "the receiver stores notifications without the lease")
	g.Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(&lease), &lease)).To(Succeed())
		g.Expect(lease.Spec.HolderIdentity).NotTo(HaveValue(Equal("another-replica")))
		var jobs batchv1.JobList
		g.Expect(k8s.List(ctx, &jobs, client.InNamespace(ns))).To(Succeed())
		g.Expect(jobs.Items).To(HaveLen(2), "the notification stored without the lease ran once leading again")
	}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Succeed())

}
