package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Storage is the state of the API server and etcd after a phase: what a
// phase leaves behind for the next, on a shared control plane.
type Storage struct {
	Phase string `json:"phase"`
	// Revision is etcd's revision, and Compacted the revision its history
	// was last compacted to: the history between them is kept.
	Revision  int64 `json:"revision"`
	Compacted int64 `json:"compactedRevision"`
	// DBMiB is etcd's database file, InUseMiB what of it holds data.
	DBMiB    float64 `json:"dbMiB"`
	InUseMiB float64 `json:"dbInUseMiB"`
	// APIServerHeapMiB is the API server's Go heap in use; a profile of
	// it is written beside results.json.
	APIServerHeapMiB float64 `json:"apiserverHeapMiB"`
}

// etcd calls a method of etcd's JSON gateway, and decodes its answer into out.
func (b *bench) etcd(ctx context.Context, method string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(b.etcdURL, "/")+method, bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s answered %s: %s", method, resp.Status, data)
	}
	return json.Unmarshal(data, out)
}

// etcdStatus reads etcd's revision and the size of its database, in
// bytes, through its maintenance status.
func (b *bench) etcdStatus(ctx context.Context) (revision int64, size, inUse float64, err error) {
	// The gateway writes int64s as strings, as proto3's JSON mapping does.
	var status struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
		DBSize      string `json:"dbSize"`
		DBSizeInUse string `json:"dbSizeInUse"`
	}
	if err := b.etcd(ctx, "/v3/maintenance/status", struct{}{}, &status); err != nil {
		return 0, 0, 0, err
	}
	if revision, err = strconv.ParseInt(status.Header.Revision, 10, 64); err != nil {
		return 0, 0, 0, fmt.Errorf("etcd's revision %q: %w", status.Header.Revision, err)
	}
	size, _ = strconv.ParseFloat(status.DBSize, 64)
	inUse, _ = strconv.ParseFloat(status.DBSizeInUse, 64)
	return revision, size, inUse, nil
}

// storage reads the state of etcd and the API server after phase.
func (b *bench) storage(ctx context.Context, phase string) (Storage, error) {
	s := Storage{Phase: phase}
	revision, size, inUse, err := b.etcdStatus(ctx)
	if err != nil {
		return s, err
	}
	s.Revision, s.DBMiB, s.InUseMiB = revision, size/(1<<20), inUse/(1<<20)
	families, err := b.apiServerMetrics(ctx)
	if err != nil {
		return s, err
	}
	for _, m := range families["go_memstats_heap_inuse_bytes"].GetMetric() {
		s.APIServerHeapMiB = m.GetGauge().GetValue() / (1 << 20)
	}
	etcdMetrics, err := b.etcdMetrics(ctx)
	if err != nil {
		return s, err
	}
	for _, m := range etcdMetrics["etcd_debugging_mvcc_compact_revision"].GetMetric() {
		s.Compacted = int64(m.GetGauge().GetValue())
	}
	return s, nil
}

// compact compacts etcd's history to its current revision and
// defragments its database, as a cluster's maintenance would: what the
// phases before left in etcd is then gone.
func (b *bench) compact(ctx context.Context) error {
	revision, _, _, err := b.etcdStatus(ctx)
	if err != nil {
		return err
	}
	var out json.RawMessage
	if err := b.etcd(ctx, "/v3/kv/compaction", map[string]any{"revision": revision, "physical": true}, &out); err != nil {
		return err
	}
	return b.etcd(ctx, "/v3/maintenance/defragment", struct{}{}, &out)
}

// apiServerMetrics reads kube-apiserver's /metrics.
func (b *bench) apiServerMetrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	return b.metrics(ctx, strings.TrimSuffix(b.cfg.Host, "/")+"/metrics", b.api)
}

// etcdMetrics reads etcd's /metrics.
func (b *bench) etcdMetrics(ctx context.Context) (map[string]*dto.MetricFamily, error) {
	return b.metrics(ctx, strings.TrimSuffix(b.etcdURL, "/")+"/metrics", http.DefaultClient)
}

// metrics reads the Prometheus text exposition at url.
func (b *bench) metrics(ctx context.Context, url string, hc *http.Client) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s answered %d: %s", url, resp.StatusCode, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	return parser.TextToMetricFamilies(bytes.NewReader(body))
}
