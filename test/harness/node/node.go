//go:build linux

package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/problemhook/problemhook/test/harness/controlplane"
)

// stateFile records what Up started and what it found missing on the host,
// for Down.
const stateFile = "node.json"

type state struct {
	Processes []process `json:"processes"`
	// HostPaths are the hostPaths that did not exist before Up.
	HostPaths []string `json:"hostPaths"`
	// Cgroups are the kubelet's cgroup directories that did not exist before Up.
	Cgroups []string `json:"cgroups"`
	// Netns are the network namespaces that existed before Up.
	Netns []string `json:"netns"`
	// Bridge is the bridge Up's CNI configuration creates.
	Bridge string `json:"bridge"`
}

// up is one run of Up.
type up struct {
	o  Options
	st state
	// netns pins the node's network namespace; empty for a control plane
	// alone, which runs on the host's loopback.
	netns  string
	exited map[string]chan struct{}
}

// Up starts the node and returns once it is Ready and the default
// ServiceAccount exists. On any failure it takes down what it started and
// says which step failed, with the end of that program's log.
func Up(ctx context.Context, o Options) (err error) {
	o = o.Defaults()
	if err := preflight(o); err != nil {
		return err
	}
	u := &up{o: o, exited: map[string]chan struct{}{}}
	if !o.ControlPlaneOnly {
		u.netns = Netns(o.Dir)
		u.st.HostPaths = missing(hostPaths)
		u.st.Cgroups = missing(cgroupDirs())
		if entries, err := os.ReadDir("/run/netns"); err == nil {
			for _, e := range entries {
				u.st.Netns = append(u.st.Netns, e.Name())
			}
		}
	}
	for _, d := range []string{"logs", "pki", "containerd", "cni/net.d", "cni/ipam", "cni/cache", "kubelet", "pod-logs", "images"} {
		if err := os.MkdirAll(filepath.Join(o.Dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := u.save(); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			if downErr := Down(context.Background(), o.Dir, o.Log); downErr != nil {
				err = errors.Join(err, fmt.Errorf("taking the half-started node down: %w", downErr))
			}
		}
	}()

	phases := []struct {
		name string
		run  func(context.Context) error
	}{
		{"certificates", u.certificates},
		{"network namespace", u.network},
		{"containerd", u.containerd},
		{"images", u.images},
		{"etcd", u.etcd},
		{"kube-apiserver", u.apiserver},
		{"controller-manager and scheduler", u.controllers},
		{"kubelet and node Ready", u.kubelet},
		{"kube-proxy", u.kubeProxy},
	}
	if o.ControlPlaneOnly {
		phases = []struct {
			name string
			run  func(context.Context) error
		}{phases[0], phases[4], phases[5]}
	}
	total := time.Now()
	for _, p := range phases {
		start := time.Now()
		if err := p.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		fmt.Fprintf(o.Log, "node: %-34s %6.1fs\n", p.name, time.Since(start).Seconds())
	}
	fmt.Fprintf(o.Log, "node: %-34s %6.1fs\n", "up", time.Since(total).Seconds())
	return nil
}

func (u *up) path(parts ...string) string {
	return filepath.Join(append([]string{u.o.Dir}, parts...)...)
}

func (u *up) save() error {
	b, err := json.MarshalIndent(u.st, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(u.path(stateFile), b, 0o644)
}

// start starts a program of the node in a session of its own, so that a
// Ctrl-C at the terminal reaches only the teardown, which stops the node's
// programs in order.
func (u *up) start(name, bin string, args ...string) error {
	logFile, err := os.OpenFile(u.path("logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer func() { _ = logFile.Close() }()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = u.o.Dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", name, err)
	}
	start, _ := startTime(cmd.Process.Pid)
	u.st.Processes = slices.DeleteFunc(u.st.Processes, func(p process) bool { return p.Name == name })
	u.st.Processes = append(u.st.Processes, process{Name: name, PID: cmd.Process.Pid, Start: start, Bin: bin, Args: args})
	exited := make(chan struct{})
	u.exited[name] = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	return u.save()
}

// startInNode starts a program of the node in the node's network
// namespace. nsenter enters it and execs the program, which keeps
// nsenter's process: its PID is the program's.
func (u *up) startInNode(name, bin string, args ...string) error {
	if u.netns == "" {
		return u.start(name, bin, args...)
	}
	return u.start(name, "nsenter", append([]string{"--net=" + u.netns, "--", bin}, args...)...)
}

// waitFor polls ready until it succeeds, the program name exits, or timeout.
func (u *up) waitFor(ctx context.Context, name string, timeout time.Duration, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if last = ready(ctx); last == nil {
			return nil
		}
		select {
		case <-u.exited[name]:
			return fmt.Errorf("%s exited while starting:\n%s", name, tail(u.path("logs", name+".log"), 30))
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %s: %w\n%s", name, timeout, last, tail(u.path("logs", name+".log"), 30))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// tail returns the last n lines of the file at path, indented.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  | " + strings.Join(lines, "\n  | ")
}

func (u *up) certificates(context.Context) error {
	p, err := newPKI(u.path("pki"))
	if err != nil {
		return err
	}
	if err := p.issue("apiserver", "kube-apiserver", nil,
		"127.0.0.1", "10.0.0.1", NodeIP, "localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"); err != nil {
		return err
	}
	if err := p.issue("kubelet-serving", NodeName, nil, NodeName, "127.0.0.1", NodeIP); err != nil {
		return err
	}
	if err := p.issue("admin", "problemhook-e2e-admin", []string{"system:masters"}); err != nil {
		return err
	}
	if err := p.issue("kubelet", "system:node:"+NodeName, []string{"system:nodes"}); err != nil {
		return err
	}
	return p.serviceAccountKey()
}

// writeKubeconfig writes a kubeconfig for the client certificate user of the pki.
func (u *up) writeKubeconfig(path, server, user string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["node"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: u.path("pki", "ca.crt")}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificate: u.path("pki", user+".crt"), ClientKey: u.path("pki", user+".key")}
	cfg.Contexts["node"] = &clientcmdapi.Context{Cluster: "node", AuthInfo: user}
	cfg.CurrentContext = "node"
	return clientcmd.WriteToFile(*cfg, path)
}

func (u *up) containerd(ctx context.Context) error {
	if err := os.WriteFile(u.path("containerd", "config.toml"), []byte(containerdConfig(u.o)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(u.path("cni", "net.d", "10-problemhook-e2e.conflist"), []byte(cniConfig(u.o)), 0o644); err != nil {
		return err
	}
	if err := u.startInNode("containerd", "containerd", "--config", u.path("containerd", "config.toml")); err != nil {
		return err
	}
	return u.waitFor(ctx, "containerd", 30*time.Second, func(ctx context.Context) error {
		return exec.CommandContext(ctx, "ctr", "--address", containerdSocket(u.o), "version").Run()
	})
}

func (u *up) images(ctx context.Context) error {
	busybox, err := busyboxEntries(u.o.Busybox)
	if err != nil {
		return err
	}
	pause, err := os.ReadFile(u.o.PauseBinary)
	if err != nil {
		return err
	}
	// Like Docker's busybox image, ours runs sh unless told otherwise.
	images := []struct {
		name            string
		entries         []entry
		entrypoint, cmd []string
	}{
		{BusyboxImage, busybox, nil, []string{"sh"}},
		{PauseImage, []entry{{name: "pause", mode: 0o755, typeflag: '0', body: pause}}, []string{"/pause"}, nil},
	}
	for i, img := range images {
		path := u.path("images", fmt.Sprintf("%d.tar", i))
		if err := writeImage(path, img.name, img.entries, img.entrypoint, img.cmd); err != nil {
			return fmt.Errorf("writing %s: %w", img.name, err)
		}
		if out, err := u.ctr(ctx, "images", "import", path); err != nil {
			return fmt.Errorf("importing %s: %w: %s", img.name, err, out)
		}
	}
	for _, alias := range u.o.BusyboxAliases {
		if out, err := u.ctr(ctx, "images", "tag", "--force", BusyboxImage, alias); err != nil {
			return fmt.Errorf("naming %s %s: %w: %s", BusyboxImage, alias, err, out)
		}
	}
	return nil
}

// ImportImage imports the OCI image layout in the tar at path into the
// containerd of the node in dir, under the name its index gives
// (io.containerd.image.name), where the kubelet finds it.
func ImportImage(ctx context.Context, dir, path string) error {
	u := &up{o: Options{Dir: dir}.Defaults()}
	if out, err := u.ctr(ctx, "images", "import", path); err != nil {
		return fmt.Errorf("importing %s: %w: %s", path, err, out)
	}
	return nil
}

// TagImage gives the image named source on the node at dir the name
// target as well, replacing what target named before.
func TagImage(ctx context.Context, dir, source, target string) error {
	u := &up{o: Options{Dir: dir}.Defaults()}
	if out, err := u.ctr(ctx, "images", "tag", "--force", source, target); err != nil {
		return fmt.Errorf("tagging %s as %s: %w: %s", source, target, err, out)
	}
	return nil
}

// ctr runs containerd's own client on the node's containerd, in the
// namespace the kubelet's images and containers are in.
func (u *up) ctr(ctx context.Context, args ...string) ([]byte, error) {
	return exec.CommandContext(ctx, "ctr", append([]string{"--address", containerdSocket(u.o), "--namespace", "k8s.io"}, args...)...).CombinedOutput()
}

func (u *up) etcd(ctx context.Context) error {
	client, peer := "127.0.0.1:2379", "127.0.0.1:2380"
	if u.netns == "" {
		var err error
		if client, err = controlplane.FreeLoopbackAddr(); err != nil {
			return err
		}
		if peer, err = controlplane.FreeLoopbackAddr(); err != nil {
			return err
		}
	}
	err := u.startInNode("etcd", filepath.Join(u.o.Assets, "etcd"),
		"--name", "node", "--data-dir", u.path("etcd"), "--unsafe-no-fsync",
		"--listen-client-urls", "http://"+client, "--advertise-client-urls", "http://"+client,
		"--listen-peer-urls", "http://"+peer, "--initial-advertise-peer-urls", "http://"+peer,
		"--initial-cluster", "node=http://"+peer)
	if err != nil {
		return err
	}
	if err := os.WriteFile(u.path("etcd-url"), []byte("http://"+client), 0o644); err != nil {
		return err
	}
	return u.waitFor(ctx, "etcd", 30*time.Second, func(ctx context.Context) error {
		return httpOK(ctx, u.nodeHTTP(), "http://"+client+"/health")
	})
}

// nodeHTTP is an HTTP client that connects inside the node's network
// namespace, or on the host for a control plane alone.
func (u *up) nodeHTTP() *http.Client {
	if u.netns == "" {
		return http.DefaultClient
	}
	return &http.Client{Transport: &http.Transport{DialContext: Dialer(u.o.Dir)}}
}

func (u *up) apiserver(ctx context.Context) error {
	// In its namespace the API server listens on every address, and
	// advertises the node's as the kubernetes Service's endpoint; the host
	// reaches it through a forwarder on its loopback. A control plane alone
	// listens on the host's loopback.
	bind, port, advertise := "0.0.0.0", APIServerPort, NodeIP
	hostAddr, err := controlplane.FreeLoopbackAddr()
	if err != nil {
		return err
	}
	if u.netns == "" {
		bind, port, _ = strings.Cut(hostAddr, ":")
		advertise = bind
	}
	etcdURL, err := os.ReadFile(u.path("etcd-url"))
	if err != nil {
		return err
	}
	pki := func(f string) string { return u.path("pki", f) }
	if err := os.WriteFile(u.path("audit-policy.yaml"), []byte(auditPolicy), 0o644); err != nil {
		return err
	}
	err = u.startInNode("kube-apiserver", filepath.Join(u.o.Assets, "kube-apiserver"),
		"--audit-policy-file", u.path("audit-policy.yaml"), "--audit-log-path", AuditLog(u.o.Dir), "--audit-log-format", "json",
		"--etcd-servers", string(etcdURL),
		"--bind-address", bind, "--secure-port", port, "--advertise-address", advertise,
		"--cert-dir", u.path("pki"),
		"--tls-cert-file", pki("apiserver.crt"), "--tls-private-key-file", pki("apiserver.key"),
		"--client-ca-file", pki("ca.crt"),
		"--service-account-issuer", "https://kubernetes.default.svc",
		"--service-account-key-file", pki("sa.pub"), "--service-account-signing-key-file", pki("sa.key"),
		"--service-cluster-ip-range", ServiceCIDR,
		"--authorization-mode", "Node,RBAC",
		"--kubelet-client-certificate", pki("admin.crt"), "--kubelet-client-key", pki("admin.key"),
		"--kubelet-preferred-address-types", "Hostname,InternalIP")
	if err != nil {
		return err
	}
	if u.netns != "" {
		err := u.start("apiserver-forward", u.o.Tool, "forward",
			"--netns", u.netns, "--listen", hostAddr, "--to", "127.0.0.1:"+APIServerPort)
		if err != nil {
			return err
		}
	}
	// The host's programs use the admin kubeconfig; the node's own, inside
	// the namespace, connect to the API server there.
	server, inside := "https://"+hostAddr, "https://"+hostAddr
	if u.netns != "" {
		inside = "https://127.0.0.1:" + APIServerPort
	}
	if err := u.writeKubeconfig(AdminKubeconfig(u.o.Dir), server, "admin"); err != nil {
		return err
	}
	if err := u.writeKubeconfig(u.path("node-admin.kubeconfig"), inside, "admin"); err != nil {
		return err
	}
	if err := u.writeKubeconfig(u.path("kubelet.kubeconfig"), inside, "kubelet"); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", AdminKubeconfig(u.o.Dir))
	if err != nil {
		return err
	}
	client, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	return u.waitFor(ctx, "kube-apiserver", time.Minute, func(ctx context.Context) error {
		return httpOK(ctx, client, server+"/readyz")
	})
}

func (u *up) controllers(context.Context) error {
	admin := u.path("node-admin.kubeconfig")
	err := u.startInNode("kube-controller-manager", filepath.Join(u.o.Assets, "kube-controller-manager"),
		"--kubeconfig", admin, "--authentication-kubeconfig", admin, "--authorization-kubeconfig", admin,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "0",
		"--service-account-private-key-file", u.path("pki", "sa.key"), "--root-ca-file", u.path("pki", "ca.crt"),
		"--use-service-account-credentials=false")
	if err != nil {
		return err
	}
	return u.startInNode("kube-scheduler", filepath.Join(u.o.Assets, "kube-scheduler"),
		"--kubeconfig", admin, "--authentication-kubeconfig", admin, "--authorization-kubeconfig", admin,
		"--leader-elect=false", "--bind-address", "127.0.0.1", "--secure-port", "0")
}

func (u *up) kubelet(ctx context.Context) error {
	port, err := controlplane.FreeLoopbackAddr()
	if err != nil {
		return err
	}
	_, port, _ = strings.Cut(port, ":")
	if err := os.WriteFile(u.path("kubelet", "config.yaml"), []byte(kubeletConfig(u.o, port)), 0o644); err != nil {
		return err
	}
	err = u.startInNode("kubelet", filepath.Join(u.o.Assets, "kubelet"),
		"--config", u.path("kubelet", "config.yaml"),
		"--kubeconfig", u.path("kubelet.kubeconfig"),
		"--root-dir", u.path("kubelet"),
		"--hostname-override", NodeName, "--node-ip", NodeIP)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", AdminKubeconfig(u.o.Dir))
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	err = u.waitFor(ctx, "kubelet", 2*time.Minute, func(ctx context.Context) error {
		node, err := cs.CoreV1().Nodes().Get(ctx, NodeName, metav1.GetOptions{})
		if err != nil {
			return err
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				if c.Status == corev1.ConditionTrue {
					return nil
				}
				return fmt.Errorf("node %s not Ready: %s", NodeName, c.Message)
			}
		}
		return fmt.Errorf("node %s has no Ready condition yet", NodeName)
	})
	if err != nil {
		return err
	}
	// Pods can be created once their namespace's ServiceAccount exists.
	return u.waitFor(ctx, "kube-controller-manager", time.Minute, func(ctx context.Context) error {
		_, err := cs.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err
	})
}

// kubeProxy starts kube-proxy in the node's namespace and waits until its
// rules are in place: Services work from then on.
func (u *up) kubeProxy(ctx context.Context) error {
	if err := os.WriteFile(u.path("kube-proxy.yaml"), []byte(kubeProxyConfig(u.o)), 0o644); err != nil {
		return err
	}
	err := u.startInNode("kube-proxy", filepath.Join(u.o.Assets, "kube-proxy"), "--config", u.path("kube-proxy.yaml"))
	if err != nil {
		return err
	}
	return u.waitFor(ctx, "kube-proxy", time.Minute, func(ctx context.Context) error {
		return httpOK(ctx, u.nodeHTTP(), fmt.Sprintf("http://127.0.0.1:%d/healthz", kubeProxyHealthzPort))
	})
}

// httpOK GETs url with client and wants a 200.
func httpOK(ctx context.Context, client *http.Client, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}

func containerdSocket(o Options) string { return filepath.Join(o.Dir, "containerd", "containerd.sock") }

// StopProgram stops one program of the node in dir: with SIGKILL when
// kill is set, as a crash would, else with SIGTERM.
func StopProgram(dir, name string, kill bool) error {
	_, p, err := load(dir, name)
	if err != nil {
		return err
	}
	if kill && p.alive() {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	return p.stop(10 * time.Second)
}

// StartProgram starts a stopped program of the node in dir again, as Up
// started it, and waits until it is ready.
func StartProgram(ctx context.Context, dir, name string) error {
	u, p, err := load(dir, name)
	if err != nil {
		return err
	}
	if p.alive() {
		return fmt.Errorf("%s is running already (pid %d)", name, p.PID)
	}
	if err := u.start(name, p.Bin, p.Args...); err != nil {
		return err
	}
	switch name {
	case "kube-apiserver":
		cfg, err := clientcmd.BuildConfigFromFlags("", AdminKubeconfig(dir))
		if err != nil {
			return err
		}
		client, err := rest.HTTPClientFor(cfg)
		if err != nil {
			return err
		}
		return u.waitFor(ctx, name, time.Minute, func(ctx context.Context) error {
			return httpOK(ctx, client, cfg.Host+"/readyz")
		})
	case "etcd":
		url, err := os.ReadFile(u.path("etcd-url"))
		if err != nil {
			return err
		}
		return u.waitFor(ctx, name, 30*time.Second, func(ctx context.Context) error {
			return httpOK(ctx, u.nodeHTTP(), string(url)+"/health")
		})
	}
	return nil
}

// load reads the state of the node in dir and finds its program name.
func load(dir, name string) (*up, process, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, process{}, fmt.Errorf("no node in %s: %w", dir, err)
	}
	u := &up{o: Options{Dir: dir}.Defaults(), exited: map[string]chan struct{}{}}
	if err := json.Unmarshal(b, &u.st); err != nil {
		return nil, process{}, err
	}
	if _, err := os.Stat(Netns(dir)); err == nil {
		u.netns = Netns(dir)
	}
	for _, p := range u.st.Processes {
		if p.Name == name {
			return u, p, nil
		}
	}
	return nil, process{}, fmt.Errorf("the node in %s has no %s", dir, name)
}
