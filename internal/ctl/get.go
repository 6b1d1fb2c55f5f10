package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	fledgev1 "github.com/fledge-dev/fledge/api/v1alpha1"
	"github.com/fledge-dev/fledge/internal/strategy"
)

// Output formats of Get.
const (
	OutputTable = ""
	OutputWide  = "wide"
	OutputJSON  = "json"
	OutputYAML  = "yaml"
)

// GetOptions select and format the applications Get lists.
type GetOptions struct {
	// Namespace to list; ignored with AllNamespaces.
	Namespace     string
	AllNamespaces bool
	// App is one application's name; "" lists all.
	App string
	// Output is OutputTable, OutputWide, OutputJSON or OutputYAML.
	Output string
	// Now is the time ages are counted to.
	Now time.Time
}

// Get writes the applications (Releases) opts selects, kubectl-style.
func Get(ctx context.Context, c client.Client, opts GetOptions, w io.Writer) error {
	switch opts.Output {
	case OutputTable, OutputWide, OutputJSON, OutputYAML:
	default:
		return Exit(ExitUsage, fmt.Errorf("output format %q: want wide, json or yaml", opts.Output))
	}
	var items []fledgev1.Release
	var single *fledgev1.Release
	if opts.App != "" {
		if opts.AllNamespaces {
			return Exit(ExitUsage, fmt.Errorf("an application name (%s) with --all-namespaces: name its namespace with -n instead", opts.App))
		}
		rel, err := getRelease(ctx, c, opts.Namespace, opts.App)
		if err != nil {
			return err
		}
		single, items = rel, []fledgev1.Release{*rel}
	} else {
		var list fledgev1.ReleaseList
		var listOpts []client.ListOption
		ns := ""
		if !opts.AllNamespaces {
			ns = opts.Namespace
			listOpts = append(listOpts, client.InNamespace(ns))
		}
		if err := c.List(ctx, &list, listOpts...); err != nil {
			what := "applications in namespace " + ns
			if ns == "" {
				what = "applications in all namespaces"
			}
			return apiError(err, "list", "releases.fledge.dev", ns, what)
		}
		items = list.Items
		slices.SortFunc(items, func(a, b fledgev1.Release) int {
			return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
		})
	}
	switch opts.Output {
	case OutputJSON, OutputYAML:
		var obj any = &fledgev1.ReleaseList{Items: items}
		if single != nil {
			single.APIVersion, single.Kind = fledgev1.GroupVersion.String(), "Release"
			obj = single
		} else {
			l := obj.(*fledgev1.ReleaseList)
			l.APIVersion, l.Kind = fledgev1.GroupVersion.String(), "ReleaseList"
			for i := range l.Items {
				l.Items[i].APIVersion, l.Items[i].Kind = fledgev1.GroupVersion.String(), "Release"
			}
		}
		b, err := json.MarshalIndent(obj, "", "    ")
		if opts.Output == OutputYAML {
			b, err = yaml.Marshal(obj)
		}
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", strings.TrimSuffix(string(b), "\n"))
		return err
	}
	if len(items) == 0 {
		if opts.AllNamespaces {
			fmt.Fprintln(w, "No applications found.")
		} else {
			fmt.Fprintf(w, "No applications found in namespace %s.\n", opts.Namespace)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	header := []string{"NAME", "HOST", "STABLE", "CANARY", "DESIRED", "EFFECTIVE", "PHASE", "STEP", "VERDICT", "AGE"}
	if opts.AllNamespaces {
		header = append([]string{"NAMESPACE"}, header...)
	}
	if opts.Output == OutputWide {
		header = append(header, "PROVIDER", "ROUTED", "REASON")
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for i := range items {
		row := Row(&items[i], opts.Now)
		if opts.AllNamespaces {
			row = append([]string{items[i].Namespace}, row...)
		}
		if opts.Output == OutputWide {
			row = append(row, wideColumns(&items[i])...)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// Row is a Release's row of the Get table: name, host, stable, canary,
// desired and effective weight, phase, step, last verdict, age.
func Row(rel *fledgev1.Release, now time.Time) []string {
	st := &rel.Status
	return []string{rel.Name, dash(st.Host), dash(st.Stable), dash(st.Canary),
		fmt.Sprintf("%d%%", st.DesiredWeight), fmt.Sprintf("%d%%", st.EffectiveWeight),
		dash(string(st.Phase)), Step(rel), dash(verdict(st)), age(rel, now)}
}

func wideColumns(rel *fledgev1.Release) []string {
	routed, reason := "-", "-"
	if c := meta.FindStatusCondition(rel.Status.Conditions, fledgev1.ConditionRouted); c != nil {
		routed = c.Reason
	}
	if a := rel.Status.Auto; a != nil && a.Reason != "" {
		reason = a.Reason
	}
	return []string{dash(string(rel.Status.Provider)), routed, reason}
}

// Step is where an automated Release is: "2/3 25%", "2/3 25% paused",
// "Promoted", "RolledBack"; "-" without automation.
func Step(rel *fledgev1.Release) string {
	a := rel.Status.Auto
	if rel.Spec.Auto == nil || a == nil {
		return "-"
	}
	if a.Result != "" {
		return string(a.Result)
	}
	s := fmt.Sprintf("%d", a.Step+1)
	if p, err := strategy.PolicyFrom(rel.Spec.Auto); err == nil {
		s += fmt.Sprintf("/%d", len(p.Steps))
	}
	s += fmt.Sprintf(" %d%%", a.Weight)
	if a.Paused {
		s += " paused"
	}
	return s
}

func age(rel *fledgev1.Release, now time.Time) string {
	if rel.CreationTimestamp.IsZero() {
		return "-"
	}
	return duration.HumanDuration(now.Sub(rel.CreationTimestamp.Time))
}

func verdict(st *fledgev1.ReleaseStatus) string {
	if st.Auto == nil {
		return ""
	}
	return st.Auto.Verdict
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
