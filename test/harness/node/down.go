//go:build linux

package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// Down takes the node in dir down and undoes what it did to the host: it
// deletes the Pods while the kubelet still runs (so that their sandboxes
// and addresses are released), stops each program by its PID, kills what
// containerd left, unmounts everything under the work directory, removes
// the cgroups, the bridge and the host directories that Up found missing,
// and then the work directory. It is safe to run twice, after a failed Up,
// and after any of the node's programs was killed.
func Down(ctx context.Context, dir string, log io.Writer) error {
	if log == nil {
		log = io.Discard
	}
	start := time.Now()
	var st state
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("reading %s: %w", filepath.Join(dir, stateFile), err)
		}
	}
	procs := map[string]process{}
	for _, p := range st.Processes {
		procs[p.Name] = p
	}
	var errs []error
	stop := func(names ...string) {
		for _, name := range names {
			if p, ok := procs[name]; ok {
				if err := p.stop(10 * time.Second); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}

	// Whatever else was started against this node (the manager under
	// test) goes first; then no new Pods, then none at all, while the
	// kubelet can still tear their sandboxes down properly.
	for _, p := range processesReferring(AdminKubeconfig(dir)) {
		if _, ours := procs[p.Name]; !ours {
			if err := p.stop(10 * time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	stop("kube-controller-manager", "kube-scheduler", "kube-proxy")
	if procs["kube-apiserver"].alive() && procs["kubelet"].alive() {
		if err := deletePods(ctx, dir); err != nil {
			fmt.Fprintf(log, "node: deleting the Pods: %v (their containers are killed below)\n", err)
		}
	}
	stop("kubelet", "apiserver-forward", "kube-apiserver", "etcd")
	if procs["containerd"].alive() {
		killContainers(ctx, dir)
	}
	stop("containerd")

	// What is left: shims (they name containerd's socket in their
	// arguments) and any process in the kubelet's cgroups.
	socket := containerdSocket(Options{Dir: dir})
	for _, p := range processesReferring(socket) {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	for _, cg := range st.Cgroups {
		for _, pid := range cgroupProcs(cg) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, p := range processesReferring(socket) {
		if err := p.stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}

	roots := append([]string{dir}, st.HostPaths...)
	var netns []string
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), "cni-") && !slices.Contains(st.Netns, e.Name()) {
				netns = append(netns, filepath.Join("/run/netns", e.Name()))
			}
		}
	}
	if err := unmountAll(append(roots, netns...)); err != nil {
		errs = append(errs, err)
	}
	for _, ns := range netns {
		if err := os.Remove(ns); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	for _, cg := range st.Cgroups {
		if err := removeCgroup(cg); err != nil {
			errs = append(errs, err)
		}
	}
	// The network namespace, its bridge and its rules go with its pin, now
	// that nothing runs in it. A node of an earlier version had its bridge
	// on the host.
	if st.Bridge != "" {
		if exec.Command("ip", "link", "show", st.Bridge).Run() == nil {
			if out, err := exec.Command("ip", "link", "delete", st.Bridge).CombinedOutput(); err != nil {
				errs = append(errs, fmt.Errorf("deleting the bridge %s: %w: %s", st.Bridge, err, out))
			}
		}
	}
	// Never remove a directory with something still mounted under it:
	// the removal would reach through the mount.
	left, err := mountsUnder(roots)
	if err == nil && len(left) > 0 {
		err = fmt.Errorf("still mounted: %s", strings.Join(left, ", "))
	}
	if err != nil {
		errs = append(errs, fmt.Errorf("keeping %s and the host directories: %w", dir, err))
		return errors.Join(errs...)
	}
	for _, p := range st.HostPaths {
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, err)
	}
	fmt.Fprintf(log, "node: %-34s %6.1fs\n", "down", time.Since(start).Seconds())
	return errors.Join(errs...)
}

// deletePods deletes every Pod and waits, for a while, until the kubelet
// has confirmed each one is gone.
func deletePods(ctx context.Context, dir string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", AdminKubeconfig(dir))
	if err != nil {
		return err
	}
	cfg.Timeout = 5 * time.Second
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	grace := int64(1)
	pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	// The Job controller, stopped by now, would have removed its
	// finalizer from each of its Pods.
	noFinalizers := []byte(`{"metadata":{"finalizers":null}}`)
	for _, p := range pods.Items {
		if len(p.Finalizers) > 0 {
			_, _ = cs.CoreV1().Pods(p.Namespace).Patch(ctx, p.Name, types.MergePatchType, noFinalizers, metav1.PatchOptions{})
		}
		_ = cs.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace})
	}
	for {
		pods, err := cs.CoreV1().Pods("").List(ctx, metav1.ListOptions{})
		if err == nil && len(pods.Items) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pods still there: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// killContainers kills and deletes every task and container containerd
// still has in the Kubernetes namespace.
func killContainers(ctx context.Context, dir string) {
	ctr := func(args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return exec.CommandContext(ctx, "ctr", append([]string{"--address", filepath.Join(dir, "containerd", "containerd.sock"), "--namespace", "k8s.io"}, args...)...).Output()
	}
	tasks, _ := ctr("tasks", "list", "--quiet")
	for _, id := range strings.Fields(string(tasks)) {
		_, _ = ctr("tasks", "kill", "--all", "--signal", "SIGKILL", id)
		_, _ = ctr("tasks", "delete", "--force", id)
	}
	containers, _ := ctr("containers", "list", "--quiet")
	for _, id := range strings.Fields(string(containers)) {
		_, _ = ctr("containers", "delete", id)
	}
}
