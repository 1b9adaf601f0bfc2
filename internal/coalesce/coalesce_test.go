package coalesce_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"

	"github.com/problemhook/problemhook/internal/coalesce"
)

// writes records what a Latest hands on, failing for keys in fail.
type writes struct {
	mu   sync.Mutex
	got  map[string][]string
	fail map[string]bool
}

func (w *writes) write(_ context.Context, k string, _ time.Time, v string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail[k] {
		delete(w.fail, k)
		return errors.New("refused")
	}
	w.got[k] = append(w.got[k], v)
	return nil
}

func (w *writes) of(k string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.got[k]...)
}

func TestLatestWritesTheLatestValueOncePerRound(t *testing.T) {
	g := NewWithT(t)
	var l coalesce.Latest[string, string]
	t0 := time.Now()
	l.Note("a", t0, "first")
	l.Note("a", t0.Add(2*time.Second), "latest")
	l.Note("a", t0.Add(time.Second), "noted late, but older")
	l.Note("b", t0, "only")

	w := &writes{got: map[string][]string{}, fail: map[string]bool{"b": true}}
	var failed []string
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.Run(ctx, 20*time.Millisecond, w.write, func(k string, _ error) { mu.Lock(); failed = append(failed, k); mu.Unlock() })
	}()
	g.Eventually(func() []string { return w.of("a") }).Should(Equal([]string{"latest"}))
	// b failed once, and was written the round after.
	g.Eventually(func() []string { return w.of("b") }).Should(Equal([]string{"only"}))
	mu.Lock()
	g.Expect(failed).To(Equal([]string{"b"}))
	mu.Unlock()

	// What is noted as it stops is written before Run returns.
	l.Note("c", time.Now(), "at the end")
	cancel()
	<-done
	g.Expect(w.of("c")).To(Equal([]string{"at the end"}))
	g.Expect(w.of("a")).To(Equal([]string{"latest"}), "written once")
}
