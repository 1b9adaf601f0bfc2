package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/problemhook/problemhook/internal/managerproc"
)

// profile writes a CPU profile of the manager taken while work runs.
func profile(m *managerproc.Process, path string, work func() error) error {
	seconds := 5
	done := make(chan error, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", m.PprofAddr, seconds))
		if err != nil {
			done <- err
			return
		}
		defer func() { _ = resp.Body.Close() }()
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		done <- errors.Join(err, f.Close())
	}()
	return errors.Join(work(), <-done)
}
