package e2e

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// TestServiceAccountPermissions: what the controller's and the gateway's
// ServiceAccounts may do, as the real API server answers `kubectl auth can-i
// --list` for them, in fledge's namespace and in an application's, equals
// the list in docs/security.md, no more and no less. What Kubernetes grants
// every ServiceAccount (discovery, self-reviews) is left out: it is what a
// ServiceAccount without any binding of its own may do.
func TestServiceAccountPermissions(t *testing.T) {
	doc, err := os.ReadFile("../../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	a := newApp(t, "rbac")
	for _, sa := range []string{"fledge-controller", "fledge-gateway"} {
		for _, ns := range []string{"fledge-system", a.ns} {
			where := "fledge-system"
			if ns != "fledge-system" {
				where = "an application namespace"
			}
			t.Run(sa+" in "+where, func(t *testing.T) {
				baseline := canI(t, "fledge-nobody", ns)
				got := slices.DeleteFunc(canI(t, sa, ns), func(r string) bool { return slices.Contains(baseline, r) })
				want := documentedRules(string(doc), sa+" in "+where)
				if want == nil {
					t.Fatalf("docs/security.md has no block for %q", sa+" in "+where)
				}
				if !slices.Equal(got, want) {
					t.Errorf("the API server allows:\n%s\ndocs/security.md says:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
			})
		}
	}
}

// canI returns the rules of ServiceAccount fledge-system/sa in namespace ns.
func canI(t *testing.T, sa, ns string) []string {
	t.Helper()
	out, err := sb.Kubectl(t.Context(), "auth", "can-i", "--list", "--as=system:serviceaccount:fledge-system:"+sa, "-n", ns)
	if err != nil {
		t.Fatalf("kubectl auth can-i --list: %v: %s", err, out)
	}
	return canIRules(out)
}

// canIRules turns the table `kubectl auth can-i --list` prints into sorted
// lines "RESOURCE [NAMES] [VERBS]" (non-resource URLs as "URL [] [VERBS]"),
// whitespace normalized.
func canIRules(out string) []string {
	var rules []string
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if i == 0 || strings.TrimSpace(line) == "" {
			continue // the header
		}
		rules = append(rules, strings.Join(strings.Fields(line), " "))
	}
	slices.Sort(rules)
	return rules
}

// documentedRules returns the sorted lines of the code block that follows
// the heading "### title" in doc, nil when there is none.
func documentedRules(doc, title string) []string {
	_, rest, ok := strings.Cut(doc, "### "+title+"\n")
	if !ok {
		return nil
	}
	_, rest, ok = strings.Cut(rest, "```\n")
	if !ok {
		return nil
	}
	block, _, _ := strings.Cut(rest, "```")
	rules := []string{}
	for _, line := range strings.Split(block, "\n") {
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			rules = append(rules, line)
		}
	}
	slices.Sort(rules)
	return rules
}
