//go:build linux

package node

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Snapshot is what the node could leave behind on the host: compare one
// taken before Up with one taken after Down.
type Snapshot struct {
	Links     []string `json:"links"`
	Routes    []string `json:"routes"`
	Mounts    []string `json:"mounts"`
	IPTables  []string `json:"iptables"`
	NFTables  []string `json:"nftables"`
	Sysctls   []string `json:"sysctls"`
	Processes []string `json:"processes"`
	Paths     []string `json:"paths"`
}

// sysctls are the host's settings a node's network could change.
var sysctls = []string{
	"net/ipv4/ip_forward", "net/ipv6/conf/all/forwarding",
	"net/bridge/bridge-nf-call-iptables", "net/bridge/bridge-nf-call-ip6tables",
	"net/ipv4/conf/all/route_localnet",
}

// TakeSnapshot records the network links and routes, mount points,
// iptables rules, the nftables ruleset, the sysctls a node's network could
// change, the names of the programs the node could leave running (see
// programs) and which of the hostPaths and cgroup directories exist.
func TakeSnapshot() (Snapshot, error) {
	var s Snapshot
	for _, family := range []string{"-4", "-6"} {
		out, err := exec.Command("ip", family, "route", "show", "table", "all").Output()
		if err != nil {
			return s, fmt.Errorf("ip %s route: %w", family, err)
		}
		s.Routes = append(s.Routes, lines(out)...)
	}
	if out, err := exec.Command("nft", "--stateless", "list", "ruleset").Output(); err == nil {
		s.NFTables = lines(out)
	} else {
		s.NFTables = []string{"(nft --stateless list ruleset not available: " + err.Error() + ")"}
	}
	for _, name := range sysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", name))
		if err != nil {
			v = []byte("(" + err.Error() + ")")
		}
		s.Sysctls = append(s.Sysctls, name+"="+strings.TrimSpace(string(v)))
	}
	out, err := exec.Command("ip", "-o", "link", "show").Output()
	if err != nil {
		return s, fmt.Errorf("ip link: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			s.Links = append(s.Links, strings.TrimSuffix(f[1], ":"))
		}
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(mounts)), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			s.Mounts = append(s.Mounts, unescapeMountPath(f[4]))
		}
	}
	if out, err := exec.Command("iptables-save").Output(); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			line := sc.Text()
			if strings.HasPrefix(line, "#") {
				continue
			}
			// Chain counters move on their own.
			if strings.HasPrefix(line, ":") {
				line, _, _ = strings.Cut(line, " [")
			}
			s.IPTables = append(s.IPTables, line)
		}
	} else {
		s.IPTables = []string{"(iptables-save not available: " + err.Error() + ")"}
	}
	s.Processes = programs()
	for _, p := range append(slices.Clone(hostPaths), cgroupDirs()...) {
		if _, err := os.Lstat(p); err == nil {
			s.Paths = append(s.Paths, p)
		}
	}
	for _, list := range [][]string{s.Links, s.Routes, s.Mounts, s.Processes} {
		slices.Sort(list)
	}
	s.Processes = slices.Compact(s.Processes)
	return s, nil
}

// nodePrograms are the names (as /proc/<pid>/comm has them, cut at 15
// bytes) of what the node runs, with "pause" for its sandboxes.
var nodePrograms = []string{"containerd", "containerd-shim", "runc", "etcd", "kube-apiserver", "kube-controller", "kube-scheduler", "kubelet", "kube-proxy", "node", "pause", "manager"}

// programs are the names of the processes the node could leave behind:
// any of its own programs, and any daemon, that is a process whose parent
// is init, as every process is once what started it has gone (the node's
// programs, a shim, a container's process). A command a person or a CI
// job runs meanwhile has a parent of its own and is no difference. Kernel
// threads, zombies and the caller's own ancestry are left out.
func programs() []string {
	ancestors := map[int]bool{}
	for pid := os.Getpid(); pid > 1; {
		ancestors[pid] = true
		ppid, _ := parentOf(pid)
		if ppid == pid {
			break
		}
		pid = ppid
	}
	var names []string
	for _, pid := range pids() {
		if ancestors[pid] {
			continue
		}
		ppid, ok := parentOf(pid)
		if _, alive := startTime(pid); !ok || !alive || pid == 2 || ppid == 2 {
			continue // gone, a zombie, or a kernel thread
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			continue
		}
		name := strings.TrimSpace(string(comm))
		if ppid == 1 || slices.Contains(nodePrograms, name) {
			names = append(names, name)
		}
	}
	return names
}

// lines are the non-empty lines of out.
func lines(out []byte) []string {
	var l []string
	for line := range strings.Lines(string(out)) {
		if line = strings.TrimRight(line, "\n"); strings.TrimSpace(line) != "" {
			l = append(l, line)
		}
	}
	return l
}

func parentOf(pid int) (int, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// Compare lists how after differs from before: links, mounts, rules and
// paths added or removed, and programs running now that were not before.
func Compare(before, after Snapshot) []string {
	var diffs []string
	set := func(kind string, b, a []string, removedToo bool) {
		for _, x := range a {
			if !slices.Contains(b, x) {
				diffs = append(diffs, fmt.Sprintf("%s added: %s", kind, x))
			}
		}
		if removedToo {
			for _, x := range b {
				if !slices.Contains(a, x) {
					diffs = append(diffs, fmt.Sprintf("%s removed: %s", kind, x))
				}
			}
		}
	}
	set("link", before.Links, after.Links, true)
	set("route", before.Routes, after.Routes, true)
	set("mount", before.Mounts, after.Mounts, true)
	set("iptables", before.IPTables, after.IPTables, true)
	set("nftables", before.NFTables, after.NFTables, true)
	set("sysctl", before.Sysctls, after.Sysctls, true)
	set("path", before.Paths, after.Paths, true)
	set("program", before.Processes, after.Processes, false)
	return diffs
}
