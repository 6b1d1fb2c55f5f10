package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/netns"
)

// dyingPods numbers the pods TestAutoCanaryPodDies kills.
var dyingPods atomic.Int64

// TestAutoCanaryPodDies: the canary's process is killed mid-step while its
// EndpointSlice still says ready (as between a crash and the kubelet's next
// probe). Under 100 requests/s no client sees an error (the gateway cannot
// connect to the canary, so nothing was sent: it serves the request from the
// stable), and the automated release still rolls the canary back (the
// gateway charges the canary with each request it could not take).
func TestAutoCanaryPodDies(t *testing.T) {
	ctx := t.Context()
	name := fmt.Sprintf("dying-v2-%d", dyingPods.Add(1)) // a pod name is taken for the sandbox's life
	pod, err := sb.Net.AddPod(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	proc, err := pod.StartWith(ctx, netns.StartOptions{}, fledgeBinary, "error-page", "v2", "--addr", ":9011")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := pod.WaitHTTP(wctx, 9011, "/healthz"); err != nil {
		t.Fatal(err)
	}
	pods[name] = pod
	t.Cleanup(func() { delete(pods, name) })

	a, load := autoApp(t, "auto-dies", name, "steps=10,50; step-duration=60s")
	a.unpublishAtEnd(t) // the host is free again for another run
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, ok := load.FirstAnswer("v2"); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the canary never answered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second) // some canary traffic, then the crash
	if err := syscall.Kill(proc.Pid(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	<-proc.Done()

	rel := a.waitAuto(t, 60*time.Second, "rollback", func(s *fledgev1.AutoStatus) bool { return s.Result != "" })
	if rel.Status.Auto.Result != fledgev1.AutoRolledBack {
		t.Fatalf("result = %s, want RolledBack; evidence: %s", rel.Status.Auto.Result, rel.Status.Auto.Evidence)
	}
	load.Stop()
	c := load.Counts()
	failed := 0
	for code, n := range c.Status {
		if code != 200 {
			failed += n
		}
	}
	t.Logf("rolled back %v after the canary died; clients: %v by status, %v by version; evidence: %s",
		rel.Status.Auto.ConcludedAt.Sub(killed).Round(time.Millisecond), c.Status, c.ByVersion, rel.Status.Auto.Evidence)
	if failed != 0 {
		t.Errorf("%d client requests failed when the canary died (statuses %v), want 0", failed, c.Status)
	}
}

// TestReleaseBadHostRefused: the API server refuses a Release whose
// spec.host is not a DNS name, naming the field, so it never routes.
func TestReleaseBadHostRefused(t *testing.T) {
	a := newApp(t, "bad-host")
	for _, host := range []string{"Bad Host!", "web.example:80", "*.example.com"} {
		rel := &fledgev1.Release{
			ObjectMeta: metav1.ObjectMeta{Namespace: a.ns, Name: "bad-host"},
			Spec:       fledgev1.ReleaseSpec{Host: host, Stable: &fledgev1.ServiceRef{Name: "v1"}},
		}
		err := sb.Client.Create(t.Context(), rel)
		if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.host") {
			t.Errorf("creating a Release with spec.host %q: %v; want Invalid naming spec.host", host, err)
		}
	}
}

// TestEmptyApplicationNameWarns: api7.cloud/published-service="" publishes
// nothing and says so on the Service, naming the annotation.
func TestEmptyApplicationNameWarns(t *testing.T) {
	a := newApp(t, "empty-app")
	a.service(t, "v1", "v1", map[string]string{published: ""})
	a.warning(t, "v1", published+`=""`, "want an application name", "nothing was published")
	if n, _ := countObjects(t, a.ns); n != 0 {
		t.Errorf("%d TrafficRoutes in the namespace, want none", n)
	}
}

// TestWeightFlipsUnderLoad: 100 changes of the canary percentage, one every
// 50 ms, while 300 requests/s go through the gateway. No client sees an
// error, both versions answer, and the gateways end at the last weight.
func TestWeightFlipsUnderLoad(t *testing.T) {
	ctx := t.Context()
	a := canaryAt10(t, "flips")
	a.unpublishAtEnd(t)
	load := sb.StartLoad(ctx, 300, a.name, "/api/error_page")
	defer load.Stop()
	weight := 10
	for i := range 100 {
		switch i % 10 {
		case 0:
			weight = 0 // back to the stable alone
		case 5:
			weight = 100 // the canary alone
		default:
			weight = i * 41 % 101
		}
		svc := &corev1.Service{}
		if err := sb.Client.Get(ctx, client.ObjectKey{Namespace: a.ns, Name: "v2"}, svc); err != nil {
			t.Fatal(err)
		}
		patch := client.MergeFrom(svc.DeepCopy())
		svc.Annotations[percentage] = strconv.Itoa(weight)
		if err := sb.Client.Patch(ctx, svc, patch); err != nil {
			t.Fatalf("flip %d to %d: %v", i+1, weight, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.served(t, "v1", "v2", int32(weight))
	load.Stop()
	c := load.Counts()
	failed, total := 0, 0
	for code, n := range c.Status {
		total += n
		if code != http.StatusOK {
			failed += n
		}
	}
	t.Logf("100 flips, last to %d%%: %d requests, %v by status, %v by version", weight, total, c.Status, c.ByVersion)
	if failed != 0 {
		t.Errorf("%d of %d client requests failed while the weight flipped (statuses %v), want 0", failed, total, c.Status)
	}
	if c.ByVersion["v1"] == 0 || c.ByVersion["v2"] == 0 {
		t.Errorf("answers by version %v, want both", c.ByVersion)
	}
	if total < 300*5 {
		t.Errorf("only %d requests in the run, want the load to have kept its rate (≥ %d)", total, 300*5)
	}
}
