package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicegw/sluice/anonymize/risk"
	"github.com/sluicegw/sluice/gateway"
)

// runPolicyRisk prints how far a caller's view of a dataset singles
// people out: it reads the whole view from the department, as the gateway
// would release it to that caller, through a gateway built in process
// from the configuration (whose upstream credentials the officer running
// it holds). Nothing is audited and nothing is released but the figures.
func runPolicyRisk(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("policy risk", "Report how far a caller's whole view of a dataset singles people out.")
	c.usage = "(--token T | --role R [--dept D] [--district X] [--purpose P] [--sub S]) --dataset SOURCE/DATASET [flags]"
	c.about = `Reads every record of the dataset the caller's read decision releases and
reports how far they single people out: unique records, the smallest
equivalence class, the fields that drive uniqueness, and the l-diversity of
sensitive fields (docs/policies.md, "Re-identification risk"). The gateway
is built in process from the configuration; nothing is audited.`
	c.examples = []string{
		"sluice policy risk --role analyst --dataset health/visits",
		"sluice policy risk --dataset police/residents --role registrar --dept police --district 朝阳区 --time 2026-12-07T10:00:00+08:00",
		"sluice policy risk --config sluice.yaml --token $TOKEN --dataset civil/assistance --json",
	}
	fs := c.flags
	dir := fs.String("dir", ".sluice-demo", "demo directory: its sluice.yaml is the default configuration")
	cfgPath := fs.String("config", "", "gateway configuration (default DIR/sluice.yaml)")
	dataset := fs.String("dataset", "", "the dataset to assess, SOURCE/DATASET (required)")
	token := fs.String("token", "", "the caller's bearer token")
	role := fs.String("role", "", "the caller's role (comma-separated for several); a demo role given alone takes the demo caller's claims")
	sub := fs.String("sub", "", "with --role: the caller's subject (default the role)")
	dept := fs.String("dept", "", "with --role: the caller's dept claim")
	district := fs.String("district", "", "with --role: the caller's district claim")
	purpose := fs.String("purpose", "", "the purpose the caller states (as the Sluice-Purpose header; with --role, also its claim)")
	justification := fs.String("justification", "", "the justification the caller states (as the Sluice-Justification header)")
	polDir := fs.String("policies", "", "assess with the policies in this directory instead of the configured ones")
	at := fs.String("time", "", "decide at this time, RFC 3339 (default now): office-hours rules see it")
	asJSON := fs.Bool("json", false, "print the report as JSON, as GET /v1/explain/risk answers")
	rest, err := c.parse(args, stdout)
	if err != nil {
		return err
	}
	claimsGiven := *sub != "" || *dept != "" || *district != ""
	switch {
	case len(rest) > 0:
		return usagef(c.name, "unexpected arguments: %s", strings.Join(rest, " "))
	case *dataset == "":
		return usagef(c.name, "--dataset SOURCE/DATASET is required")
	case (*token == "") == (*role == ""):
		return usagef(c.name, "give --token or --role")
	case *token != "" && claimsGiven:
		return usagef(c.name, "--sub, --dept and --district describe a caller given by --role; a token says them itself")
	}
	now := time.Now
	if *at != "" {
		t, err := time.Parse(time.RFC3339, *at)
		if err != nil {
			return usagef(c.name, "--time %q is not an RFC 3339 time (2026-11-26T10:00:00+08:00)", *at)
		}
		now = func() time.Time { return t }
	}
	req := gateway.RiskRequest{Token: *token, Purpose: *purpose, Justification: *justification, Dataset: *dataset}
	if *role != "" {
		req.Subject = riskSubject(*role, *sub, *dept, *district, *purpose)
	}
	if *cfgPath == "" {
		*cfgPath = filepath.Join(*dir, "sluice.yaml")
	}
	srv, stop, err := offlineGateway(ctx, *cfgPath, *polDir, now, stderr)
	if err != nil {
		return err
	}
	defer stop()
	rep, err := srv.Risk(ctx, req)
	if err != nil {
		var ge *gateway.Error
		switch {
		case errors.As(err, &ge) && ge.Code == "unauthenticated":
			return errors.New("the gateway would refuse this token: " + ge.Msg)
		case errors.As(err, &ge) && (ge.Code == "bad_request" || ge.Code == "not_found"):
			return usagef(c.name, "%s", ge.Msg)
		}
		return fmt.Errorf("policy risk: %w", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		return enc.Encode(rep)
	}
	printRisk(stdout, rep)
	return nil
}

// riskSubject is the caller --role describes: a demo role alone is the
// demo's caller of that role, with its claims; otherwise the role with
// the claims given, and nothing else.
func riskSubject(roles, sub, dept, district, purpose string) *gateway.Principal {
	if sub == "" && dept == "" && district == "" && purpose == "" {
		for _, r := range demoRoles {
			if r.role == roles {
				c := r.claims
				return &gateway.Principal{Subject: c.Subject, Roles: slices.Clone(c.Roles), Org: c.Dept, Dept: c.Dept,
					District: c.District, Purpose: c.Purpose, Claims: map[string]any{}}
			}
		}
	}
	p := &gateway.Principal{Subject: cmpOr(sub, roles), Org: dept, Dept: dept, District: district, Purpose: purpose,
		Claims: map[string]any{}}
	for _, r := range strings.Split(roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			p.Roles = append(p.Roles, r)
		}
	}
	return p
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// printRisk prints a risk report for a person.
func printRisk(w io.Writer, rep *gateway.RiskReport) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "dataset\t%s\n", rep.Dataset)
	c := rep.Subject
	caller := fmt.Sprintf("%s, roles [%s]", c.ID, strings.Join(c.Roles, ", "))
	for _, kv := range [][2]string{{"dept", c.Dept}, {"district", c.District}, {"purpose", c.Purpose}} {
		if kv[1] != "" {
			caller += fmt.Sprintf(", %s %q", kv[0], kv[1])
		}
	}
	fmt.Fprintf(tw, "caller\t%s\n", caller)
	fmt.Fprintf(tw, "policy\trevision %s\n", rep.PolicyRevision)
	if !rep.Decision.Allow {
		fmt.Fprintf(tw, "decision\tdeny: %s\n", rep.Decision.Reason)
		fmt.Fprintf(tw, "view\tnone: this caller reads no record of the dataset\n")
		tw.Flush()
		return
	}
	r := rep.Report
	fmt.Fprintf(tw, "decision\tallow: %s\n", rep.Decision.Reason)
	fmt.Fprintf(tw, "row filters\t%s\n", orNone(rep.Rows))
	fmt.Fprintf(tw, "records\t%d\n", r.Records)
	fmt.Fprintf(tw, "unique\t%d (%.1f%%): in a class of one person, each points at that person\n", r.Unique, 100*r.UniqueShare)
	atLeast := ""
	if r.MinKAtLeast {
		atLeast = " or more"
	}
	fmt.Fprintf(tw, "min_k\t%d%s: the people of the smallest class\n", r.MinK, atLeast)
	var bins []string
	for _, b := range r.Classes.Sizes {
		bins = append(bins, fmt.Sprintf("%s: %d (%d records)", b.Size, b.Classes, b.Records))
	}
	fmt.Fprintf(tw, "classes\t%d; by people %s\n", r.Classes.Count, strings.Join(bins, ", "))
	if d := rep.Decision; d.MinK > 0 {
		l := ""
		if d.MinL > 0 {
			l = fmt.Sprintf(", min_l %d", d.MinL)
		}
		fmt.Fprintf(tw, "released\tunder min_k %d%s: %d of these records withheld (%.1f%%)\n", d.MinK, l, d.Withheld,
			100*float64(d.Withheld)/float64(max(r.Records, 1)))
	}
	if len(rep.Constant) > 0 {
		fmt.Fprintf(tw, "constant\t%s: one value for every record, not counted\n", strings.Join(rep.Constant, ", "))
	}
	tw.Flush()

	fmt.Fprintln(w, "\nquasi-identifiers (released id fields count too: a masked ID keeps digits, a pseudonym is one value per person)")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  field\tclass\tdistinct\ttreatment\n")
	for _, q := range r.QuasiIdentifiers {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", q.Field, q.Class, q.Distinct, q.Treatment)
	}
	tw.Flush()

	fmt.Fprintln(w, "\ndrivers (unique records left were the field dropped alone, and with every field above it)")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  field\tunique without\tunique after\n")
	for _, d := range r.Drivers {
		fmt.Fprintf(tw, "  %s\t%d\t%d\n", d.Field, d.UniqueWithout, d.UniqueAfter)
	}
	tw.Flush()

	if len(r.Sensitive) == 0 {
		fmt.Fprintln(w, "\nsensitive fields: none released")
		return
	}
	fmt.Fprintln(w, "\nsensitive (l: the fewest distinct values in a class; a class with l = 1 tells its value of everyone in it)")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  field\tl\tclasses with l = 1\trecords in them\n")
	for _, s := range r.Sensitive {
		l := fmt.Sprint(s.L)
		if s.AtLeast {
			l = fmt.Sprintf("≥ %d", risk.MaxDiversity)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\n", s.Field, l, s.ClassesWithL1, s.RecordsWithL1)
	}
	tw.Flush()
}
