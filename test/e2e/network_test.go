//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/problemhook/problemhook/test/harness/node"
)

// Pods have a network, as on any cluster: a Pod reaches the API server
// through the kubernetes Service, reaches another Pod through a ClusterIP Service (kube-proxy's rules), and
// reaches nothing outside the node's network namespace. A test on the
// host reaches the Service through the namespace.
func TestPodsReachTheAPIServerAndServices(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	nodeDir := os.Getenv("E2E_NODE_DIR")
	if nodeDir == "" {
		t.Fatal("E2E_NODE_DIR (the node's work directory) must be set: run these tests with `make e2e`")
	}
	e.apply(fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: httpd
    image: %[1]s
    imagePullPolicy: Never
    command: [sh, -c, 'mkdir -p /tmp/www && echo hello-from-web > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www']
    securityContext: {runAsUser: 65534, runAsNonRoot: true, allowPrivilegeEscalation: false}
`, node.BusyboxImage))
	e.eventually("the web Pod is ready behind its Service", time.Minute, func() error {
		var slices discoveryv1.EndpointSliceList
		if err := kube.List(ctx, &slices, client.InNamespace(e.ns), client.MatchingLabels{discoveryv1.LabelServiceName: "web"}); err != nil {
			return err
		}
		for _, s := range slices.Items {
			for _, ep := range s.Endpoints {
				if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
					return nil
				}
			}
		}
		return fmt.Errorf("no ready endpoint in %d EndpointSlices", len(slices.Items))
	})

	// The client Pod starts after the Service exists, so the kubelet gives
	// it WEB_SERVICE_HOST, as it gives every Pod KUBERNETES_SERVICE_HOST.
	// busybox's wget crashes in its static build, so nc speaks HTTP; to the
	// API server that is plain HTTP on its TLS port, which Go's server
	// answers in words of its own. A Service is refused until kube-proxy
	// has written its rules (at most every 3 s on this node), so the client
	// tries for up to ten seconds, as any client of a new Service must.
	e.apply(fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  restartPolicy: Never
  containers:
  - name: client
    image: %[1]s
    imagePullPolicy: Never
    command:
    - sh
    - -c
    - |
      get() {
        for try in 1 2 3 4 5 6 7 8 9 10; do
          printf 'GET %%s HTTP/1.0\r\n\r\n' "$3" | nc -w 5 "$1" "$2" && { echo; return; }
          sleep 1
        done
        echo "$1:$2: failed"
      }
      get "$WEB_SERVICE_HOST" "$WEB_SERVICE_PORT" /
      get "$KUBERNETES_SERVICE_HOST" "$KUBERNETES_SERVICE_PORT" /version
      nc -w 3 198.51.100.1 80 </dev/null && echo "outside: reached" || echo "outside: unreachable"
    securityContext: {runAsUser: 65534, runAsNonRoot: true, allowPrivilegeEscalation: false}
`, node.BusyboxImage))
	e.eventually("the client Pod to finish", 2*time.Minute, func() error {
		pod, err := cs.CoreV1().Pods(e.ns).Get(ctx, "client", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
			return fmt.Errorf("phase %s", pod.Status.Phase)
		}
		return nil
	})
	log := e.logs("client")
	for _, want := range []string{
		"hello-from-web\n",
		"Client sent an HTTP request to an HTTPS server.",
		"outside: unreachable",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the client Pod's log does not say %q:\n%s", want, log)
		}
	}

	// From the host: the Service through the node's namespace, as a test
	// reaches the receiver's. (Whether the host itself can connect to that
	// address depends on its network, not on the node: make e2e's host
	// check proves the node added no route, rule or link to it.)
	svc, err := cs.CoreV1().Services(e.ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	inNode := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: node.Dialer(nodeDir)}}
	resp, err := inNode.Get("http://" + net.JoinHostPort(svc.Spec.ClusterIP, "80") + "/")
	if err != nil {
		t.Fatalf("the web Service from the node's namespace: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "hello-from-web\n" {
		t.Errorf("the web Service answered %s %q, want hello-from-web", resp.Status, body)
	}
}
