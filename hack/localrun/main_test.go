package main

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	problemhookv1alpha1 "github.com/problemhook/problemhook/api/v1alpha1"
	"github.com/problemhook/problemhook/internal/controlplane"
	"github.com/problemhook/problemhook/internal/scheme"
)

// TestMakeRun holds `make run` to what it promises: with no cluster it
// starts one, and the curl it prints stores a ProblemEvent that the
// kubeconfig it wrote can read; cancelling it stops everything.
func TestMakeRun(t *testing.T) {
	g := NewWithT(t)
	root := controlplane.RepoRoot()
	tmp := t.TempDir()
	t.Setenv("KUBECONFIG", filepath.Join(tmp, "no-such-kubeconfig"))

	manager := filepath.Join(tmp, "manager")
	build := exec.Command("go", "build", "-o", manager, ".")
	build.Dir = root
	out, err := build.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(out))

	var stdout syncBuffer
	lr := &localRun{
		manager: manager, root: root, kubeconfig: filepath.Join(tmp, "kubeconfig"),
		receiverAddr: freeAddr(t), probeAddr: freeAddr(t), metricsAddr: freeAddr(t),
		out: &stdout,
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- lr.run(ctx) }()

	// The printed curl, run as printed.
	curl := regexp.MustCompile(`(?s)\n  (curl .*?/hooks/problemhook-demo/dynatrace)\n`)
	g.Eventually(stdout.String).WithTimeout(60*time.Second).Should(MatchRegexp(curl.String()), "no curl printed")
	answer, err := exec.Command("sh", "-c", curl.FindStringSubmatch(stdout.String())[1]+" --silent --show-error").CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), string(answer))
	g.Expect(string(answer)).To(ContainSubstring(`"result":"created"`))

	// What `kubectl --kubeconfig ... get problemevents -A` would show.
	g.Expect(stdout.String()).To(ContainSubstring("--kubeconfig " + lr.kubeconfig + " get problemevents -A"))
	cfg, err := clientcmd.BuildConfigFromFlags("", lr.kubeconfig)
	g.Expect(err).NotTo(HaveOccurred())
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	g.Expect(err).NotTo(HaveOccurred())
	var events problemhookv1alpha1.ProblemEventList
	g.Expect(c.List(ctx, &events)).To(Succeed())
	g.Expect(events.Items).To(HaveLen(1))
	g.Expect(events.Items[0].Spec.Title).To(Equal("CPU saturation"))

	cancel()
	g.Eventually(done).WithTimeout(60 * time.Second).Should(Receive(BeNil()))
	// The manager and the API server are gone with it.
	for _, addr := range []string{lr.receiverAddr, cfg.Host[len("https://"):]} {
		_, err := net.DialTimeout("tcp", addr, time.Second)
		g.Expect(err).To(HaveOccurred(), "%s still listening", addr)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
