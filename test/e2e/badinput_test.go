package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
)

// badAnnotations are refused by the controller, one at a time, on a
// published application at 10%: each gets a Warning Event naming the
// annotation (or the field it sets) and the value, and the application's
// routing does not change. svc is the Service annotated: v2 is the canary,
// v1 the stable, v3 a new Service of its own.
var badAnnotations = func() []struct{ svc, key, value string } {
	var cases []struct{ svc, key, value string }
	add := func(svc, key string, values ...string) {
		for _, v := range values {
			cases = append(cases, struct{ svc, key, value string }{svc, key, v})
		}
	}
	add("v2", percentage, "10%", "abc", "-5", "150", "10.5", "", " 10", "10 ", "+10", "1e1", "0x10", "١٠", "101",
		"99999999999", "10,5", "ten", "5/10", "null", "true", "0.0")
	add("v2", canaryKey, "yes", "1", "TRUE", "True", "on", "maybe", " true", "", "t")
	add("v2", canaryMatch, ";;", "header:X~(", "nope:x", "header:=v", "header:", "cookie:", "query:", "header:X Y=1",
		"header", ":x", "header:X~[", "query:=1", "path:/x", "ip:10.0.0.1", "header:X-Debug=1;;header:Y", "cookie:a b=1")
	add("v2", "fledge.dev/auto", "maybe", "yes", "1", "on", "abortt", "", "TRUE", "abort", "pause")
	add("v2", autoPolicy, "steps=50,10", "steps=", "steps=0", "steps=101", "steps=10,abc", "step-duration=abc",
		"step-duration=-1s", "step-duration=0s", "step-requests=-5", "deadline=abc", "max-error-rate=-1%",
		"acceptable-error-rate=abc", "latency=maybe", "source=nope", "unknown=1", "steps", "=10",
		"steps=10;steps=20", "steps=10,10", "max-error-rate=5", "deadline=0s", "step-requests=abc",
		"max-error-rate=200%", "max-error-rate=100%", "acceptable-error-rate=150%", "false-rollback-rate=0%",
		"false-rollback-rate=100%", "soak=-1s", "soak=abc", "deadline-action=ignore", "deadline-action=Pause")
	add("v2", "fledge.dev/auto-override", "garbage", "promote-now", "", "PROMOTE", "abort,pause")
	add("v2", "fledge.dev/auto-restart", "garbage", "", "yes")
	add("v1", "fledge.dev/provider", "nope", "APISIX", "", "embedded ", "gateway_api")
	add("v1", "fledge.dev/gateway-api-parent", "a/b/c/d", "Bad_NS/gw", "/gw", "ns/", "ns/gw/Bad_Section", "ns gw")
	add("v1", "fledge.dev/tls-secret", "", "Bad_Secret", "ns/name", "a b", strings.Repeat("x", 254))
	add("v3", published, "Bad_App", "-web", "web.", "a b", "web-", "WEB", strings.Repeat("x", 254))
	return cases
}()

// TestBadAnnotationsChangeNothing runs every badAnnotations case against one
// application: a Warning naming the annotation and value for each, and not
// one write to its TrafficRoute nor a change of what the gateways serve.
func TestBadAnnotationsChangeNothing(t *testing.T) {
	a := canaryAt10(t, "bad-inputs")
	a.unpublishAtEnd(t)
	a.service(t, "v3", "v2", nil)
	route := a.trafficRoute(t)
	for i, c := range badAnnotations {
		t.Run(fmt.Sprintf("%d %s=%q", i, c.key, c.value), func(t *testing.T) {
			old, had := a.setAnnotation(t, c.svc, c.key, &c.value)
			defer a.setAnnotation(t, c.svc, c.key, ptrIf(old, had))
			a.waitWarningNote(t, c.svc, fmt.Sprintf("%q", c.value), c.key)
			if now := a.trafficRoute(t); now.ResourceVersion != route.ResourceVersion {
				t.Fatalf("the TrafficRoute was written (resourceVersion %s, was %s): %+v", now.ResourceVersion, route.ResourceVersion, now.Spec)
			}
			for _, g := range sb.Gateways {
				if !servedBy(g, a.name, 10) {
					t.Fatalf("gateway %s no longer serves %s at 10%%", g.URL, a.name)
				}
			}
		})
	}
	t.Logf("%d bad annotations refused, each with a Warning, the TrafficRoute never written", len(badAnnotations))
}

func ptrIf(s string, ok bool) *string {
	if !ok {
		return nil
	}
	return &s
}

func (a *app) trafficRoute(t *testing.T) *fledgev1.TrafficRoute {
	t.Helper()
	var tr fledgev1.TrafficRoute
	if err := sb.Client.Get(t.Context(), client.ObjectKey{Namespace: a.ns, Name: a.name}, &tr); err != nil {
		t.Fatal(err)
	}
	return &tr
}

// setAnnotation sets (value nil: removes) annotation key of Service svc and
// returns its previous value.
func (a *app) setAnnotation(t *testing.T, svc, key string, value *string) (string, bool) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context()) // also from a deferred restore
	var s corev1.Service
	if err := sb.Client.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: svc}, &s); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(s.DeepCopy())
	old, had := s.Annotations[key]
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	if value == nil {
		delete(s.Annotations, key)
	} else {
		s.Annotations[key] = *value
	}
	if err := sb.Client.Patch(ctx, &s, patch); err != nil {
		t.Fatal(err)
	}
	return old, had
}

// waitWarningNote waits for a Warning Event in the app's namespace, about
// Service svc or the app's Release, whose note has quoted and one of names.
func (a *app) waitWarningNote(t *testing.T, svc, quoted string, names ...string) {
	t.Helper()
	a.waitWarningFor(t, fmt.Sprintf("on Service %s or Release %s with %s and one of %q", svc, a.name, quoted, names), func(e eventsv1.Event) (bool, bool) {
		r := e.Regarding
		about := r.Kind == "Service" && r.Name == svc || r.Kind == "Release" && r.Name == a.name
		return about, about && strings.Contains(e.Note, quoted) && containsAny(e.Note, names)
	})
}

func containsAny(s string, parts []string) bool {
	for _, p := range parts {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// TestBadReleaseFieldsRefused: the API server refuses each bad Release
// outright (the CRD's schema), naming the field.
func TestBadReleaseFieldsRefused(t *testing.T) {
	a := newApp(t, "bad-fields")
	good := func() *fledgev1.Release {
		return &fledgev1.Release{
			ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "bad-fields"},
			Spec: fledgev1.ReleaseSpec{Host: "bad-fields.example", Stable: &fledgev1.ServiceRef{Name: "v1", Port: 9011},
				Canary: &fledgev1.ServiceRef{Name: "v2", Port: 9011}, CanaryWeight: 10},
		}
	}
	cases := []struct {
		field string
		bad   func(*fledgev1.ReleaseSpec)
	}{
		{"spec.canaryWeight", func(s *fledgev1.ReleaseSpec) { s.CanaryWeight = -1 }},
		{"spec.canaryWeight", func(s *fledgev1.ReleaseSpec) { s.CanaryWeight = 101 }},
		{"spec.host", func(s *fledgev1.ReleaseSpec) { s.Host = "Bad Host!" }},
		{"spec.host", func(s *fledgev1.ReleaseSpec) { s.Host = "a..b" }},
		{"spec.host", func(s *fledgev1.ReleaseSpec) { s.Host = "-a.example" }},
		{"spec.host", func(s *fledgev1.ReleaseSpec) { s.Host = "a_b.example" }},
		{"spec.host", func(s *fledgev1.ReleaseSpec) { s.Host = "web.example:80" }},
		{"spec.host", func(s *fledgev1.ReleaseSpec) { s.Host = "*.example" }},
		{"spec.stable.port", func(s *fledgev1.ReleaseSpec) { s.Stable.Port = -80 }},
		{"spec.stable.name", func(s *fledgev1.ReleaseSpec) { s.Stable.Name = "" }},
		{"spec.stable.port", func(s *fledgev1.ReleaseSpec) { s.Stable.Port = 70000 }},
		{"spec.canary.port", func(s *fledgev1.ReleaseSpec) { s.Canary.Port = -1 }},
		{"spec.canary.port", func(s *fledgev1.ReleaseSpec) { s.Canary.Port = 65536 }},
		{"spec.provider", func(s *fledgev1.ReleaseSpec) { s.Provider = "nope" }},
		{"spec.match[0].type", func(s *fledgev1.ReleaseSpec) { s.Match = []fledgev1.Predicate{{Type: "IP", Name: "x"}} }},
		{"spec.match[0].match", func(s *fledgev1.ReleaseSpec) {
			s.Match = []fledgev1.Predicate{{Type: fledgev1.PredicateHeader, Name: "x", Match: "Like"}}
		}},
		{"spec.auto.maxErrorRate", func(s *fledgev1.ReleaseSpec) { s.Auto = &fledgev1.AutoPolicy{MaxErrorRate: "5"} }},
		{"spec.auto.maxErrorRate", func(s *fledgev1.ReleaseSpec) { s.Auto = &fledgev1.AutoPolicy{MaxErrorRate: "-1%"} }},
		{"spec.auto.acceptableErrorRate", func(s *fledgev1.ReleaseSpec) { s.Auto = &fledgev1.AutoPolicy{AcceptableErrorRate: "abc%"} }},
		{"spec.auto.falseRollbackRate", func(s *fledgev1.ReleaseSpec) { s.Auto = &fledgev1.AutoPolicy{FalseRollbackRate: "1"} }},
		{"spec.auto.stepRequests", func(s *fledgev1.ReleaseSpec) { s.Auto = &fledgev1.AutoPolicy{StepRequests: ptr.To[int32](-1)} }},
		{"spec.auto.metricSource", func(s *fledgev1.ReleaseSpec) { s.Auto = &fledgev1.AutoPolicy{MetricSource: "nope"} }},
		{"spec.auto.deadlineAction", func(s *fledgev1.ReleaseSpec) { s.Auto = &fledgev1.AutoPolicy{DeadlineAction: "ignore"} }},
	}
	for _, c := range cases {
		rel := good()
		c.bad(&rel.Spec)
		err := sb.Client.Create(t.Context(), rel)
		if err == nil {
			_ = sb.Client.Delete(t.Context(), rel)
			t.Errorf("%s: a bad Release was accepted: %+v", c.field, rel.Spec)
			continue
		}
		if !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: the API server's error does not name the field: %v", c.field, err)
		}
	}
	var list fledgev1.ReleaseList
	if err := sb.Client.List(t.Context(), &list, client.InNamespace(a.ns)); err != nil || len(list.Items) != 0 {
		t.Errorf("Releases left after the refusals: %d (%v)", len(list.Items), err)
	}
	t.Logf("%d bad Releases refused by the API server", len(cases))
}

// badFlags are refused by the fledge binary before it does anything: a
// non-zero exit and a message naming the flag.
var badFlags = [][]string{
	{"gateway", "--max-client-conns=0"}, {"gateway", "--max-client-conns=-1"}, {"gateway", "--max-client-conns=abc"},
	{"gateway", "--response-header-timeout=0s"}, {"gateway", "--response-header-timeout=-1s"},
	{"gateway", "--max-response-header-bytes=0"}, {"gateway", "--max-request-header-bytes=0"},
	{"gateway", "--client-header-timeout=0s"}, {"gateway", "--client-body-timeout=-5s"},
	{"gateway", "--client-send-timeout=0s"}, {"gateway", "--client-idle-timeout=0s"},
	{"gateway", "--dial-timeout=0s"}, {"gateway", "--drain-timeout=-1s"},
	{"gateway", "--http-addr=nope"}, {"gateway", "--metrics-addr=:99999"},
	{"gateway", "--https-addr=nope"}, {"gateway", "--default-tls-secret=noslash"}, {"gateway", "--default-tls-secret=a/b/c"},
	{"gateway", "--max-endpoint-requests=0"},
	{"controller", "--leader-elect-lease-duration=1s", "--leader-elect-renew-deadline=2s"},
	{"controller", "--leader-elect-lease-duration=0s"}, {"controller", "--leader-elect-retry-period=-1s"},
	{"controller", "--leader-elect-renew-deadline=1s", "--leader-elect-retry-period=1s"},
	{"controller", "--default-provider=nope"}, {"controller", "--default-provider=apisix"},
	{"controller", "--metric-source=nope"}, {"controller", "--metric-source=prometheus"},
	{"controller", "--workers=0"}, {"controller", "--workers=-3"}, {"controller", "--analysis-interval=0s"},
	{"controller", "--apisix-key-secret=bad"}, {"controller", "--gateway-api-parent=a/b/c/d"},
	{"controller", "--kube-api-qps=-1"}, {"controller", "--kube-api-burst=-1"},
	{"controller", "--prometheus-url=::bad"}, {"controller", "--prometheus-url=ftp://prom:9090"},
	{"controller", "--prometheus-url=http://user:pw@prom:9090"}, {"controller", "--prometheus-timeout=0s"},
	{"controller", "--gateway-metrics-service=noslash"}, {"controller", "--metrics-addr=nope"},
	{"controller", "--health-addr=:-1"}, {"controller", "--apisix-admin-url=not a url"},
	{"error-page", "v1", "--error-ratio=abc"},
}

// TestBadFlagsRefused runs the fledge binary with each of badFlags, given a
// working kubeconfig: it must exit at once, non-zero, naming the flag.
func TestBadFlagsRefused(t *testing.T) {
	for _, args := range badFlags {
		flag := strings.SplitN(strings.TrimPrefix(args[len(args)-1], "--"), "=", 2)[0]
		if args[0] != "error-page" {
			args = append(args, "--kubeconfig="+sb.CP.Kubeconfig)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, fledgeBinary, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		timedOut := ctx.Err() != nil
		cancel()
		var exit *exec.ExitError
		switch {
		case timedOut:
			t.Errorf("fledge %s: still running after 10 s: the bad flag was accepted; output: %s", strings.Join(args, " "), out.String())
		case !errors.As(err, &exit):
			t.Errorf("fledge %s: exited 0 (%v), want a refusal; output: %s", strings.Join(args, " "), err, out.String())
		case !strings.Contains(out.String(), flag):
			t.Errorf("fledge %s: the message does not name --%s: %s", strings.Join(args, " "), flag, out.String())
		}
	}
	t.Logf("%d bad flag sets refused", len(badFlags))
}
