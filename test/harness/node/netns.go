//go:build linux

package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// The node's network. Everything of the node runs in a network namespace
// of its own, pinned in its work directory, so that nothing it does to
// links, routes, nftables or sysctls reaches the host. Inside, the node's
// address is on loopback and the Pods' bridge is their gateway to it; no
// link leads out. The host reaches the API server through a forwarder on
// its own loopback, and tests reach anything else with Dial and Listen.
const (
	// NodeIP is the node's address inside its namespace: the kubelet's
	// --node-ip, and the endpoint of the kubernetes Service.
	NodeIP = "10.240.0.1"
	// APIServerPort is the API server's port inside the namespace.
	APIServerPort = "6443"
	// ServiceCIDR is where Service addresses come from; the kubernetes
	// Service is its first.
	ServiceCIDR = "10.0.0.0/24"
)

// Netns is the file that pins the network namespace of the node in dir.
func Netns(dir string) string { return filepath.Join(dir, "netns") }

// newNetns creates a network namespace and pins it at path, a file that
// must not exist. The namespace lives until the file is unmounted and no
// process is left in it.
func newNetns(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return err
	}
	_ = f.Close()
	return onThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("creating a network namespace: %w", err)
		}
		if err := unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("pinning the network namespace at %s: %w", path, err)
		}
		return nil
	})
}

// InNetns runs f on a thread of its own that is in the network namespace
// pinned at path: what f dials, listens on or starts is in that namespace.
func InNetns(path string, f func() error) error {
	ns, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = ns.Close() }()
	return onThread(func() error {
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("entering the network namespace %s: %w", path, err)
		}
		return f()
	})
}

// onThread runs f on a locked OS thread, and puts that thread back in this
// process's network namespace afterwards. A thread that cannot be put back
// is never unlocked, so the Go runtime ends it rather than reuse it.
func onThread(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- err
			return
		}
		defer func() { _ = home.Close() }()
		err = f()
		if restore := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); restore != nil {
			errc <- errors.Join(err, fmt.Errorf("returning to the host's network namespace: %w", restore))
			return
		}
		runtime.UnlockOSThread()
		errc <- err
	}()
	return <-errc
}

// Dialer dials inside the network namespace of the node in dir, for an
// http.Transport's DialContext: the host's tests reach Pods, Services and
// the node's own ports through it.
func Dialer(dir string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var conn net.Conn
		err := InNetns(Netns(dir), func() error {
			var err error
			conn, err = (&net.Dialer{}).DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}

// Listen listens inside the network namespace of the node in dir, as
// net.Listen does: a stand-in started by a test on it is reachable from
// Pods (at NodeIP) and nowhere else.
func Listen(dir, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := InNetns(Netns(dir), func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// Forward accepts connections on l until it is closed, and joins each to a
// connection dial makes, byte for byte in both directions.
func Forward(l net.Listener, dial func() (net.Conn, error)) error {
	for {
		in, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go func() {
			defer func() { _ = in.Close() }()
			out, err := dial()
			if err != nil {
				return
			}
			defer func() { _ = out.Close() }()
			var wg sync.WaitGroup
			wg.Go(func() {
				_, _ = io.Copy(out, in)
				closeWrite(out)
			})
			_, _ = io.Copy(in, out)
			closeWrite(in)
			wg.Wait()
		}()
	}
}

// closeWrite ends the sending half of c, so that the far side reads EOF.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// network creates the node's network namespace: loopback up with the
// node's address on it, forwarding on for Pods that reach other Pods
// through a Service, and bridged Pod traffic through nftables, so that a
// Pod's reply to another Pod on the bridge is translated back too. Each of
// these is the namespace's own; the host's settings are not touched.
func (u *up) network(ctx context.Context) error {
	if err := newNetns(u.netns); err != nil {
		return err
	}
	// The namespace has no default route. Service addresses get one of
	// their own, so that a connection from the node itself (a test's
	// Dialer) is routed before kube-proxy's rules translate it to a Pod.
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"address", "add", NodeIP + "/32", "dev", "lo"},
		{"route", "add", ServiceCIDR, "dev", "lo", "src", NodeIP},
	} {
		if out, err := exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + u.netns, "--", "ip"}, args...)...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return InNetns(u.netns, func() error {
		// /proc/sys/net is the namespace of the thread that opens it.
		for _, sysctl := range []string{"net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables"} {
			if err := os.WriteFile(filepath.Join("/proc/sys", sysctl), []byte("1"), 0o644); err != nil {
				return fmt.Errorf("setting %s in the node's namespace: %w", sysctl, err)
			}
		}
		return nil
	})
}
