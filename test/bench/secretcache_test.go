package bench

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/problemhook/problemhook/internal/scheme"
	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// BenchmarkSecretCache measures what the manager's cluster-wide Secret
// cache costs: the heap an informer holds for 10,000 Secrets of 1 KiB of
// data each (a token or a small certificate), against the same cache over
// an empty namespace, measured in the same run.
//
//	go test ./test/bench -run '^$' -bench SecretCache -benchtime 1x
func BenchmarkSecretCache(b *testing.B) {
	const secrets, size = 10000, 1 << 10
	env, err := controlplane.Start(controlplane.RepoRoot())
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 1000, 2000
	ctx := context.Background()
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		b.Fatal(err)
	}
	for _, ns := range []string{"empty", "full"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			b.Fatal(err)
		}
	}
	data := make([]byte, size)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	sem := make(chan struct{}, 32)
	errs := make(chan error, secrets)
	for i := range secrets {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			errs <- c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "full", Name: fmt.Sprintf("secret-%05d", i)},
				Data: map[string][]byte{"token": data}})
		}()
	}
	for range secrets {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}

	// heap caches the Secrets of ns as the manager does (managed fields
	// stripped) and returns the live heap it holds.
	heap := func(ns string) uint64 {
		before := liveHeap()
		informers, err := cache.New(cfg, cache.Options{
			Scheme:            scheme.New(),
			DefaultTransform:  cache.TransformStripManagedFields(),
			DefaultNamespaces: map[string]cache.Config{ns: {}},
		})
		if err != nil {
			b.Fatal(err)
		}
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		if _, err := informers.GetInformer(cctx, &corev1.Secret{}); err != nil {
			b.Fatal(err)
		}
		go func() { _ = informers.Start(cctx) }()
		syncCtx, syncCancel := context.WithTimeout(cctx, 2*time.Minute)
		defer syncCancel()
		if !informers.WaitForCacheSync(syncCtx) {
			b.Fatal("the Secret cache did not sync")
		}
		held := liveHeap() - before
		runtime.KeepAlive(informers)
		return held
	}
	b.ResetTimer()
	var empty, full uint64
	for range b.N {
		empty, full = heap("empty"), heap("full")
	}
	b.ReportMetric(float64(full)/(1<<20), "MiB/10k-secrets")
	b.ReportMetric(float64(full-min(empty, full))/secrets, "B/secret")
	b.ReportMetric(float64(full-min(empty, full))/secrets/size, "x-data-size")
}

// liveHeap is the heap in use after a collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
