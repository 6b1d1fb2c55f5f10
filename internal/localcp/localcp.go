// Package localcp starts a real local Kubernetes control plane (kube-apiserver
// and etcd built from source by hack/controlplane.sh) for fledge's tests and demo.
package localcp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Options configure a control plane.
type Options struct {
	// CRDDirs are folders of CRD manifests to install before Start returns.
	CRDDirs []string
	// Progress receives build progress (the first build takes minutes). Nil discards.
	Progress io.Writer
}

// ControlPlane is a running kube-apiserver and etcd.
type ControlPlane struct {
	env *envtest.Environment
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Kubeconfig is the path of a kubeconfig file for Config.
	Kubeconfig string
	// Kubectl is the path of the kubectl binary built beside the server.
	Kubectl string
	// Dir holds the kubeconfig; removed by Stop.
	dir string
}

// RepoRoot returns the root of the fledge repository containing the working
// directory (the folder with hack/controlplane.sh).
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "hack", "controlplane.sh")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("hack/controlplane.sh not found above the working directory: run from the fledge repository")
		}
		dir = parent
	}
}

// Assets returns the folder holding kube-apiserver, etcd and kubectl: the
// KUBEBUILDER_ASSETS environment variable when set, else the output of
// hack/controlplane.sh, which builds them when not cached.
func Assets(ctx context.Context, progress io.Writer) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	if progress == nil {
		progress = io.Discard
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "controlplane.sh"))
	cmd.Stdout = &out
	cmd.Stderr = progress
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building the local control plane (hack/controlplane.sh): %w", err)
	}
	dir := strings.TrimSpace(out.String())
	if dir == "" {
		return "", errors.New("hack/controlplane.sh printed no folder")
	}
	return dir, nil
}

// Start builds (when needed) and starts a control plane.
func Start(ctx context.Context, opts Options) (*ControlPlane, error) {
	assets, err := Assets(ctx, opts.Progress)
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     opts.CRDDirs,
		ErrorIfCRDPathMissing: true,
	}
	env.ControlPlane.KubectlPath = filepath.Join(assets, "kubectl")
	api := env.ControlPlane.GetAPIServer()
	args := api.Configure()
	args.Set("advertise-address", "127.0.0.1")
	args.Set("endpoint-reconciler-type", "none")
	args.Set("authorization-mode", "RBAC")
	args.Set("service-cluster-ip-range", "10.96.0.0/16")
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("starting kube-apiserver and etcd from %s: %w", assets, err)
	}
	cp := &ControlPlane{env: env, Config: cfg, Kubectl: env.ControlPlane.KubectlPath}
	cp.dir, err = os.MkdirTemp("", "fledge-cp-")
	if err == nil {
		cp.Kubeconfig = filepath.Join(cp.dir, "kubeconfig")
		err = os.WriteFile(cp.Kubeconfig, env.KubeConfig, 0o600)
	}
	if err != nil {
		_ = cp.Stop()
		return nil, fmt.Errorf("writing kubeconfig: %w", err)
	}
	return cp, nil
}

// KubectlCommand returns kubectl with the control plane's kubeconfig.
func (c *ControlPlane) KubectlCommand(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, c.Kubectl, append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
}

// Stop stops the control plane and removes its files.
func (c *ControlPlane) Stop() error {
	err := c.env.Stop()
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
	return err
}
