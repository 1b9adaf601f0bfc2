//go:build linux

// Command node brings a real single-node cluster up and down on this
// machine for the end-to-end tests (test/harness/node says how), and checks
// that taking it down left the host as it was.
//
//	node up       --dir DIR --assets DIR --pause FILE
//	node down     --dir DIR [--keep-logs DIR]
//	node snapshot --out FILE
//	node compare  --before FILE
//	node forward  --netns FILE --listen ADDR --to ADDR
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/problemhook/problemhook/test/harness/node"
)

func main() { os.Exit(run()) }

func run() int {
	if len(os.Args) < 2 {
		usage()
	}
	cmd, args := os.Args[1], os.Args[2:]
	flags := flag.NewFlagSet("node "+cmd, flag.ExitOnError)
	var o node.Options
	flags.StringVar(&o.Dir, "dir", "/tmp/problemhook-node", "The node's work directory.")
	flags.StringVar(&o.Assets, "assets", "", "Where etcd and the Kubernetes binaries are (hack/control-plane.sh builds them).")
	flags.StringVar(&o.PauseBinary, "pause", "", "The pod sandbox program (test/harness/node/pause).")
	keepLogs := flags.String("keep-logs", "", "Copy the node's logs here before removing its work directory.")
	file := flags.String("out", "", "Where snapshot writes.")
	before := flags.String("before", "", "The snapshot compare compares with.")
	netns := flags.String("netns", "", "The network namespace forward connects in.")
	listen := flags.String("listen", "", "The address forward listens on, on the host.")
	to := flags.String("to", "", "The address forward connects to, in the namespace.")
	_ = flags.Parse(args)

	for _, path := range []*string{&o.Dir, &o.Assets, &o.PauseBinary} {
		if *path != "" {
			abs, err := filepath.Abs(*path)
			if err != nil {
				fmt.Fprintln(os.Stderr, "node "+cmd+":", err)
				return 1
			}
			*path = abs
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o.Log = os.Stderr
	var err error
	switch cmd {
	case "up":
		if err = node.Up(ctx, o); err == nil {
			fmt.Println(node.AdminKubeconfig(o.Dir))
		}
	case "down":
		if *keepLogs != "" {
			err = copyLogs(filepath.Join(o.Dir, "logs"), *keepLogs)
		}
		// Taking the node down is never cut short by a second Ctrl-C.
		err = errors.Join(err, node.Down(context.WithoutCancel(ctx), o.Dir, os.Stderr))
	case "snapshot":
		err = snapshot(*file)
	case "compare":
		err = compare(*before)
	case "forward":
		err = forward(ctx, *netns, *listen, *to)
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "node "+cmd+":", err)
		return 1
	}
	return 0
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: node up|down|snapshot|compare|forward [flags]")
	os.Exit(2)
}

func snapshot(path string) error {
	s, err := node.TakeSnapshot()
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func compare(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var before node.Snapshot
	if err := json.Unmarshal(b, &before); err != nil {
		return err
	}
	after, err := node.TakeSnapshot()
	if err != nil {
		return err
	}
	if diffs := node.Compare(before, after); len(diffs) > 0 {
		for _, d := range diffs {
			fmt.Fprintln(os.Stderr, "  "+d)
		}
		return fmt.Errorf("the host is not as it was before the node came up (%d differences)", len(diffs))
	}
	fmt.Fprintln(os.Stderr, "node: the host is as it was: links, routes, mounts, iptables and nftables rules, sysctls, programs and paths")
	return nil
}

// forward joins each connection to listen, on the host, to to in the
// network namespace pinned at netns, until ctx ends: the node runs it so
// that the host reaches its API server.
func forward(ctx context.Context, netns, listen, to string) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		_ = l.Close()
	}()
	return node.Forward(l, func() (conn net.Conn, err error) {
		err = node.InNetns(netns, func() error {
			conn, err = net.DialTimeout("tcp", to, 10*time.Second)
			return err
		})
		return conn, err
	})
}

// copyLogs copies the node's program logs to dir, to read after the work
// directory is gone.
func copyLogs(from, dir string) error {
	entries, err := os.ReadDir(from)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
