package main

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/yaml"

	"github.com/fledge-dev/fledge/deploy"
)

// TestGatewayFlagsRefuseNonPositive: a zero or negative limit or timeout is a
// clear error naming the flag, never a silent default.
func TestGatewayFlagsRefuseNonPositive(t *testing.T) {
	tests := map[string]struct {
		args    []string
		wantErr string
	}{
		"negative count":            {[]string{"--max-client-conns=-1"}, "--max-client-conns=-1: must not be negative"},
		"zero count":                {[]string{"--max-request-header-bytes=0"}, "--max-request-header-bytes=0: must be positive"},
		"zero timeout":              {[]string{"--response-header-timeout=0s"}, "--response-header-timeout=0s: must be positive"},
		"negative timeout":          {[]string{"--client-body-timeout=-5s"}, "--client-body-timeout=-5s: must not be negative"},
		"negative shutdown delay":   {[]string{"--shutdown-delay=-1s"}, "--shutdown-delay=-1s: must not be negative"},
		"zero shutdown delay is ok": {[]string{"--shutdown-delay=0s"}, ""},
		"defaults are ok":           {nil, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cmd := newGatewayCommand()
			if err := cmd.Flags().Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := positiveFlags(cmd.Flags(), "shutdown-delay")
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
}

// TestDeployGatewayArgs: the gateway's args in deploy/ parse, pass the
// checks, and spell out the limits at their defaults.
func TestDeployGatewayArgs(t *testing.T) {
	raw, err := deploy.FS.ReadFile("gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, doc := range strings.Split(string(raw), "\n---") {
		var d appsv1.Deployment
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil || d.Kind != "Deployment" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name == "gateway" {
				args = c.Args
			}
		}
	}
	if len(args) == 0 || args[0] != "gateway" {
		t.Fatalf("gateway container args %q, want them to start with \"gateway\"", args)
	}
	cmd := newGatewayCommand()
	fs := cmd.Flags()
	if err := fs.Parse(args[1:]); err != nil {
		t.Fatalf("deploy/gateway.yaml: %v", err)
	}
	if err := positiveFlags(fs, "shutdown-delay"); err != nil {
		t.Fatalf("deploy/gateway.yaml: %v", err)
	}
	for _, name := range []string{"max-client-conns", "max-request-header-bytes", "client-header-timeout",
		"client-body-timeout", "client-send-timeout", "client-idle-timeout", "response-header-timeout", "max-response-header-bytes", "max-endpoint-requests"} {
		f := fs.Lookup(name)
		if !f.Changed {
			t.Errorf("deploy/gateway.yaml does not set --%s", name)
		} else if f.Value.String() != f.DefValue {
			t.Errorf("deploy/gateway.yaml sets --%s=%s, the default is %s: change both or neither", name, f.Value, f.DefValue)
		}
	}
}
