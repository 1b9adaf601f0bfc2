//go:build linux

package node

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// hostPaths are the places outside its work directory that the node's
// programs write to whatever they are told: containerd's shim sockets and
// runc state, the CNI result cache, the kubelet's device-plugin directory
// and log links, network namespaces, and the self-signed certificates of
// the Kubernetes components. Down removes those that Up found missing.
var hostPaths = []string{
	"/run/containerd",
	"/run/netns",
	"/run/kubernetes",
	"/var/lib/cni",
	"/var/lib/kubelet",
	"/var/log/containers",
	"/var/log/pods",
	"/opt/containerd",
}

// cgroupName is the cgroup the kubelet puts Pods under, in every
// controller's hierarchy.
const cgroupName = "kubepods"

// preflight refuses to start a node on a host that cannot run one, saying why.
func preflight(o Options) error {
	var problems []string
	if o.ControlPlaneOnly {
		return controlPlanePreflight(o)
	}
	if os.Geteuid() != 0 {
		problems = append(problems, "not root: the kubelet and containerd need root to create cgroups, mounts and network namespaces")
	}
	if !cgroupsUsable() {
		problems = append(problems, "no usable cgroups: neither cgroup v2 at /sys/fs/cgroup nor the v1 cpu, memory and pids controllers are mounted")
	}
	if fs, err := os.ReadFile("/proc/filesystems"); err != nil || !strings.Contains(string(fs), "\toverlay\n") {
		problems = append(problems, "no overlayfs in /proc/filesystems: containerd's overlayfs snapshotter needs it (modprobe overlay)")
	}
	for _, tool := range []string{"containerd", "containerd-shim-runc-v2", "runc", "ctr", "nft", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			problems = append(problems, fmt.Sprintf("%s is not on PATH (apt-get install %s)", tool, Packages))
		}
	}
	for _, file := range []string{filepath.Join(o.CNIBinDir, "bridge"), filepath.Join(o.CNIBinDir, "host-local"), filepath.Join(o.CNIBinDir, "loopback"), o.Busybox, o.PauseBinary, o.Tool} {
		if _, err := os.Stat(file); err != nil {
			problems = append(problems, fmt.Sprintf("%s is missing", file))
		}
	}
	for _, c := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy"} {
		if _, err := os.Stat(filepath.Join(o.Assets, c)); err != nil {
			problems = append(problems, fmt.Sprintf("%s is missing from %s (hack/control-plane.sh %s builds it)", c, o.Assets, c))
		}
	}
	if _, err := os.Stat(filepath.Join(o.Dir, stateFile)); err == nil {
		problems = append(problems, fmt.Sprintf("a node is already up in %s: take it down first", o.Dir))
	}
	if len(problems) > 0 {
		return fmt.Errorf("cannot start a node here:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return nil
}

// controlPlanePreflight checks what etcd and kube-apiserver alone need.
func controlPlanePreflight(o Options) error {
	var problems []string
	for _, c := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(o.Assets, c)); err != nil {
			problems = append(problems, fmt.Sprintf("%s is missing from %s (hack/control-plane.sh builds it)", c, o.Assets))
		}
	}
	if _, err := os.Stat(filepath.Join(o.Dir, stateFile)); err == nil {
		problems = append(problems, fmt.Sprintf("a node is already up in %s: take it down first", o.Dir))
	}
	if len(problems) > 0 {
		return fmt.Errorf("cannot start a control plane here:\n  - %s", strings.Join(problems, "\n  - "))
	}
	return nil
}

func cgroupsUsable() bool {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return true
	}
	for _, c := range []string{"cpu", "memory", "pids"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", c, "cgroup.procs")); err != nil {
			return false
		}
	}
	return true
}

// cgroupDirs are the directories the kubelet's cgroup would have, one per
// mounted hierarchy (one in all on cgroup v2).
func cgroupDirs() []string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return []string{filepath.Join("/sys/fs/cgroup", cgroupName)}
	}
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	var dirs []string
	for _, e := range entries {
		// Skip the symlinks (cpu -> cpu,cpuacct) and count each hierarchy once.
		if e.IsDir() && e.Type()&fs.ModeSymlink == 0 {
			dirs = append(dirs, filepath.Join("/sys/fs/cgroup", e.Name(), cgroupName))
		}
	}
	return dirs
}

// missing reports which of paths do not exist.
func missing(paths []string) []string {
	var out []string
	for _, p := range paths {
		if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
			out = append(out, p)
		}
	}
	return out
}

// mountsUnder lists the mount points under any of roots, deepest first.
func mountsUnder(roots []string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	var mounts []string
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		for _, root := range roots {
			if mp == root || strings.HasPrefix(mp, root+"/") {
				mounts = append(mounts, mp)
				break
			}
		}
	}
	slices.SortFunc(mounts, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return slices.Compact(mounts), s.Err()
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountAll unmounts everything under roots, deepest first; a busy mount
// is detached.
func unmountAll(roots []string) error {
	var errs []error
	for range 3 {
		mounts, err := mountsUnder(roots)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		errs = errs[:0]
		for _, m := range mounts {
			if err := syscall.Unmount(m, 0); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
				if err := syscall.Unmount(m, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) {
					errs = append(errs, fmt.Errorf("unmounting %s: %w", m, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// removeCgroup removes a cgroup directory and those under it, leaves first.
// A cgroup with a process left in it cannot be removed, and says so.
func removeCgroup(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for i := len(dirs) - 1; i >= 0; i-- {
		var rmErr error
		for range 20 {
			if rmErr = syscall.Rmdir(dirs[i]); rmErr == nil || errors.Is(rmErr, syscall.ENOENT) {
				rmErr = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if rmErr != nil {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", dirs[i], rmErr))
		}
	}
	return errors.Join(errs...)
}

// cgroupProcs lists the processes left in the cgroups under dir.
func cgroupProcs(dir string) []int {
	var pids []int
	// A cgroup that cannot be read stops the walk: its removal fails later and says why.
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "cgroup.procs" {
			return err
		}
		b, _ := os.ReadFile(path)
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids
}

// A process is a program the node started, known by its PID and the time
// it started, so that a PID the kernel has since given to another process
// is never signalled.
type process struct {
	Name  string `json:"name"`
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	// Bin and Args are how it was started, for StartProgram.
	Bin  string   `json:"bin,omitempty"`
	Args []string `json:"args,omitempty"`
}

// startTime is field 22 of /proc/<pid>/stat, in clock ticks since boot;
// alive is false once the process is gone or a zombie.
func startTime(pid int) (start uint64, alive bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	// The command name is in parentheses and may hold spaces: read after it.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 20 {
		return 0, false
	}
	start, _ = strconv.ParseUint(fields[19], 10, 64)
	return start, fields[0] != "Z" && fields[0] != "X"
}

func (p process) alive() bool {
	start, alive := startTime(p.PID)
	return alive && start == p.Start
}

// stop sends SIGTERM, and SIGKILL after grace, and waits for the process to end.
func (p process) stop(grace time.Duration) error {
	if !p.alive() {
		return nil
	}
	_ = syscall.Kill(p.PID, syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for p.alive() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !p.alive() {
		return nil
	}
	_ = syscall.Kill(p.PID, syscall.SIGKILL)
	for range 100 {
		if !p.alive() {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s (pid %d) did not end after SIGKILL", p.Name, p.PID)
}

// processesReferring lists the live processes whose command line mentions s.
func processesReferring(s string) []process {
	var out []process
	self := os.Getpid()
	for _, pid := range pids() {
		if pid == self {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmdline), s) {
			continue
		}
		if start, alive := startTime(pid); alive {
			name, _, _ := strings.Cut(string(cmdline), "\x00")
			out = append(out, process{Name: filepath.Base(name), PID: pid, Start: start})
		}
	}
	return out
}

// pids lists the processes under /proc.
func pids() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}
