package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// startPrometheus starts Debian's prometheus on addr, scraping every gateway's
// /metrics each second, and waits until every target is up.
func (s *Sandbox) startPrometheus(ctx context.Context, addr string) error {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return errors.New("prometheus is not installed: run hack/setup.sh (it installs Debian's prometheus package)")
	}
	dir, err := os.MkdirTemp("", "fledge-prometheus-")
	if err != nil {
		return err
	}
	s.promDir = dir
	var targets []string
	for _, g := range s.Gateways {
		targets = append(targets, fmt.Sprintf("%q", strings.TrimPrefix(g.AdminURL, "http://")))
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: fledge-gateway
    static_configs:
      - targets: [%s]
`, strings.Join(targets, ", "))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting prometheus: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(exited) }()
	s.stopPrometheus = func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	s.progress("prometheus at http://%s, scraping %d gateways every second", addr, len(s.Gateways))
	return s.waitFor(ctx, "prometheus scraping every gateway", func() (bool, error) {
		select {
		case <-exited:
			log, _ := os.ReadFile(logFile.Name())
			return false, fmt.Errorf("prometheus exited:\n%s", log)
		default:
		}
		resp, err := s.http.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(`sum(up{job="fledge-gateway"})`))
		if err != nil {
			return false, nil
		}
		defer resp.Body.Close()
		var body struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil || len(body.Data.Result) != 1 {
			return false, nil
		}
		v := body.Data.Result[0].Value
		return len(v) == 2 && v[1] == fmt.Sprint(len(s.Gateways)), nil
	})
}
