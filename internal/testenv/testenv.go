// Package testenv runs fledge's tests against a real kube-apiserver and etcd
// (internal/localcp) with the CRDs and RBAC from deploy/ applied, so the
// manifests users apply are the ones the tests prove.
package testenv

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/fledge-dev/fledge/internal/controller"
	"github.com/fledge-dev/fledge/internal/localcp"
)

// SystemNamespace is where fledge's own objects live (deploy/namespace.yaml).
const SystemNamespace = "fledge-system"

// Env is a running control plane with fledge's CRDs and RBAC.
type Env struct {
	*localcp.ControlPlane
	// Root is the repository root.
	Root string
	// Client is an admin client with fledge's scheme.
	Client client.Client
}

// Options choose extra CRDs.
type Options struct {
	// GatewayAPI also installs the Gateway API standard CRDs.
	GatewayAPI bool
}

// Start starts an Env; call Stop when done (TestMain).
func Start(ctx context.Context, opts Options) (*Env, error) {
	root, err := localcp.RepoRoot()
	if err != nil {
		return nil, err
	}
	dirs := []string{filepath.Join(root, "deploy", "crds")}
	if opts.GatewayAPI {
		dir, err := GatewayAPICRDs(ctx)
		if err != nil {
			return nil, err
		}
		dirs = append(dirs, dir)
	}
	cp, err := localcp.Start(ctx, localcp.Options{CRDDirs: dirs, Progress: os.Stderr})
	if err != nil {
		return nil, err
	}
	env := &Env{ControlPlane: cp, Root: root}
	env.Client, err = client.New(cp.Config, client.Options{Scheme: controller.Scheme()})
	if err == nil {
		err = env.ApplyFiles(ctx, filepath.Join(root, "deploy", "namespace.yaml"),
			filepath.Join(root, "deploy", "rbac", "controller.yaml"), filepath.Join(root, "deploy", "rbac", "gateway.yaml"))
	}
	if err != nil {
		_ = cp.Stop()
		return nil, err
	}
	return env, nil
}

// GatewayAPICRDs returns the folder of the standard-channel Gateway API CRDs
// shipped in the pinned sigs.k8s.io/gateway-api module.
func GatewayAPICRDs(ctx context.Context) (string, error) {
	out, err := goCommand(ctx, "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api")
	if err != nil {
		return "", fmt.Errorf("locating the gateway-api module: %w", err)
	}
	return filepath.Join(strings.TrimSpace(out), "config", "crd", "standard"), nil
}

// ApplyFiles creates every object of the given multi-document YAML files
// (objects that already exist are left as they are).
func (e *Env) ApplyFiles(ctx context.Context, paths ...string) error {
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := e.ApplyYAML(ctx, data); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// ApplyYAML creates the objects of a multi-document YAML stream.
func (e *Env) ApplyYAML(ctx context.Context, data []byte) error {
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := k8syaml.Unmarshal(doc, &obj.Object); err != nil {
			return err
		}
		if len(obj.Object) == 0 {
			continue
		}
		if err := e.Client.Create(ctx, obj); err != nil && !isAlreadyExists(err) {
			return fmt.Errorf("creating %s %s: %w", obj.GetKind(), obj.GetName(), err)
		}
	}
}

// ServiceAccountConfig returns a client configuration that impersonates a
// ServiceAccount of fledge-system, so code under test has exactly the rights
// deploy/rbac grants it.
func (e *Env) ServiceAccountConfig(name string) *rest.Config {
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + SystemNamespace + ":" + name}
	return cfg
}

// Namespace creates a namespace for one test and deletes it when the test ends.
func (e *Env) Namespace(t testing.TB, prefix string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-"}}
	if err := e.Client.Create(t.Context(), ns); err != nil {
		t.Fatalf("creating namespace: %v", err)
	}
	t.Cleanup(func() { _ = e.Client.Delete(context.Background(), ns) })
	return ns.Name
}
