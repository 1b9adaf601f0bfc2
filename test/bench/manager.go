package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/problemhook/problemhook/test/harness/managerproc"
)

// startManager starts the manager, a replica that leads unless the bench
// holds the Lease.
func (b *bench) startManager(ctx context.Context) error {
	if err := b.leaseNamespace(ctx); err != nil {
		return err
	}
	m, err := managerproc.New(b.o.manager, b.kubeconfig, filepath.Join(b.o.out, "manager.log"), "--leader-elect")
	if err != nil {
		return err
	}
	b.mgr = m
	return m.Start(ctx)
}

// profiled runs work while the manager and the API server each write a
// CPU profile of it, as name-manager.cpu.pprof and name-apiserver.cpu.pprof.
func (b *bench) profiled(name string, work func() error) error {
	const seconds = 5
	profiles := []struct {
		hc        *http.Client
		url, file string
	}{
		{http.DefaultClient, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", b.mgr.PprofAddr, seconds), name + "-manager.cpu.pprof"},
		{b.api, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(b.cfg.Host, "/"), seconds), name + "-apiserver.cpu.pprof"},
	}
	done := make(chan error, len(profiles))
	for _, p := range profiles {
		go func() { done <- writeProfile(p.hc, p.url, filepath.Join(b.o.out, p.file)) }()
	}
	err := work()
	for range profiles {
		err = errors.Join(err, <-done)
	}
	return err
}

// writeProfile gets a profile from url and writes it to path.
func writeProfile(hc *http.Client, url, path string) error {
	resp, err := hc.Get(url)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.Copy(f, resp.Body)
	return errors.Join(err, f.Close())
}
