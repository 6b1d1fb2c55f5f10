package gatewayapi

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseParentRef(t *testing.T) {
	tests := []struct {
		in      string
		want    string // JSON of the reference; "" when invalid
		mention string // part of the error
	}{
		{in: "infra/public", want: `{"group":"gateway.networking.k8s.io","kind":"Gateway","namespace":"infra","name":"public"}`},
		{in: "infra/public/https", want: `{"group":"gateway.networking.k8s.io","kind":"Gateway","namespace":"infra","name":"public","sectionName":"https"}`},
		{in: "infra/gw.example.com/web.tls", want: `{"group":"gateway.networking.k8s.io","kind":"Gateway","namespace":"infra","name":"gw.example.com","sectionName":"web.tls"}`},
		{in: "", mention: "want namespace/name or namespace/name/sectionName"},
		{in: "public", mention: "want namespace/name or namespace/name/sectionName"},
		{in: "infra/public/https/extra", mention: "want namespace/name or namespace/name/sectionName"},
		{in: "/public", mention: `namespace ""`},
		{in: "Infra/public", mention: `namespace "Infra"`},
		{in: "in.fra/public", mention: `namespace "in.fra"`},
		{in: "infra/", mention: `gateway name ""`},
		{in: "infra/Public", mention: `gateway name "Public"`},
		{in: "infra/public/", mention: `section name ""`},
		{in: "infra/public/HTTPS", mention: `section name "HTTPS"`},
		{in: " infra/public", mention: `namespace " infra"`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			ref, err := ParseParentRef(tc.in)
			if tc.want == "" {
				if !errors.Is(err, ErrInvalidParentRef) {
					t.Fatalf("ParseParentRef(%q) = %+v, %v; want an error wrapping ErrInvalidParentRef", tc.in, ref, err)
				}
				if !strings.Contains(err.Error(), tc.mention) || !strings.Contains(err.Error(), `"`+tc.in+`"`) {
					t.Errorf("ParseParentRef(%q) = %v; want it to quote the input and mention %q", tc.in, err, tc.mention)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseParentRef(%q): %v", tc.in, err)
			}
			got, err := json.Marshal(ref)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("ParseParentRef(%q) = %s; want %s", tc.in, got, tc.want)
			}
		})
	}
}
