package main

// How the hub commands print the gateway's answers: tables for lists,
// key: value lines and the history for one object.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicegw/sluice/hub"
)

// writeAnswer prints a JSON answer as the gateway sent it, ending in a
// newline.
func writeAnswer(w io.Writer, body []byte) error {
	if !bytes.HasSuffix(body, []byte("\n")) {
		body = append(body, '\n')
	}
	_, err := w.Write(body)
	return err
}

// hubTime is a time as the hub commands print it, in UTC as audit
// search prints the trail's.
func hubTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// who is a principal as the hub commands print it: "rita (stats-bureau)".
func who(subject, dept string) string {
	if dept == "" {
		return subject
	}
	return subject + " (" + dept + ")"
}

// printTable prints a header and rows in aligned columns.
func printTable(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func requestTable(w io.Writer, body []byte) error {
	var v struct{ Requests []hub.Request }
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	var rows [][]string
	for _, q := range v.Requests {
		rows = append(rows, []string{q.ID, string(q.State), q.Dataset, q.Owner, who(q.Requester.Subject, q.Requester.Dept), hubTime(q.Due)})
	}
	return printTable(w, []string{"ID", "STATE", "DATASET", "OWNER", "REQUESTER", "DUE"}, rows)
}

func grantTable(w io.Writer, body []byte) error {
	var v struct{ Grants []hub.Grant }
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	var rows [][]string
	for _, g := range v.Grants {
		rows = append(rows, []string{g.ID, string(g.State), g.Dataset, g.Owner, g.Dept, g.Purpose, hubTime(g.ValidUntil)})
	}
	return printTable(w, []string{"ID", "STATE", "DATASET", "OWNER", "DEPT", "PURPOSE", "VALID UNTIL"}, rows)
}

func demandTable(w io.Writer, body []byte) error {
	var v struct{ Demands []hub.Demand }
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	var rows [][]string
	for _, d := range v.Demands {
		rows = append(rows, []string{d.ID, string(d.State), dash(d.Dataset), d.Owner, who(d.Requester.Subject, d.Requester.Dept), hubTime(d.Due)})
	}
	return printTable(w, []string{"ID", "STATE", "DATASET", "OWNER", "REQUESTER", "DUE"}, rows)
}

// details are key: value lines; an empty value leaves its line out.
type details [][2]string

func (d *details) add(key, value string) {
	if value != "" {
		*d = append(*d, [2]string{key, value})
	}
}

// print writes the lines, then the history, one transition a line.
func (d details) print(w io.Writer, history []hub.Transition) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	for _, kv := range d {
		fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "history:")
	for _, t := range history {
		line := fmt.Sprintf("  %s  %s %s → %s by %s as %s", hubTime(t.At), t.Action, dash(string(t.From)), t.To,
			who(t.By.Subject, t.By.Dept), t.By.As)
		if t.Reason != "" {
			line += ": " + t.Reason
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}

// treatments prints a grant's fields and their treatments, by name.
func treatments(fields map[string]any) string {
	var out []string
	for _, f := range slices.Sorted(maps.Keys(fields)) {
		// A named treatment ("keep") reads as its name; a structured one
		// as the JSON the policy reads.
		t, ok := fields[f].(string)
		if !ok {
			b, _ := json.Marshal(fields[f])
			t = string(b)
		}
		out = append(out, f+"="+t)
	}
	return strings.Join(out, ", ")
}

// terms adds the rows cap and k-anonymity of a grant or an approval.
func (d *details) terms(maxRows, minK, minL int) {
	if maxRows > 0 {
		d.add("max rows", fmt.Sprint(maxRows))
	}
	if minK > 0 {
		d.add("min k", fmt.Sprint(minK))
	}
	if minL > 0 {
		d.add("min l", fmt.Sprint(minL))
	}
}

// decided adds who decided and why.
func (d *details) decided(dec *hub.Decision) {
	if dec == nil {
		return
	}
	d.add("decision", fmt.Sprintf("%s by %s as %s at %s", dec.Action, who(dec.By.Subject, dec.By.Dept), dec.By.As, hubTime(dec.At)))
	d.add("reason", dec.Reason)
}

func showRequest(w io.Writer, body []byte) error {
	var q hub.Request
	if err := json.Unmarshal(body, &q); err != nil {
		return err
	}
	var d details
	d.add("id", q.ID)
	d.add("state", string(q.State))
	d.add("dataset", q.Dataset)
	d.add("fields", strings.Join(q.Fields, ", "))
	d.add("purpose", q.Purpose)
	d.add("legal basis", q.LegalBasis)
	d.add("justification", q.Justification)
	d.add("valid until", hubTime(q.ValidUntil))
	d.add("requester", who(q.Requester.Subject, q.Requester.Dept))
	d.add("owner", q.Owner)
	d.add("sharing", string(q.Sharing))
	d.add("created", hubTime(q.Created))
	due := hubTime(q.Due)
	if !q.PausedAt.IsZero() {
		due = fmt.Sprintf("paused at %s, %d working day(s) left", hubTime(q.PausedAt), q.RemainingDays)
	}
	d.add("due", due)
	d.decided(q.Decision)
	if q.Decision != nil && q.Decision.Conditions != nil {
		c := q.Decision.Conditions
		d.add("granted fields", treatments(c.Fields))
		d.add("grant valid until", hubTime(c.ValidUntil))
		d.terms(c.MaxRows, c.MinK, c.MinL)
	}
	d.add("grant", q.Grant)
	return d.print(w, q.History)
}

func showGrant(w io.Writer, body []byte) error {
	var g hub.Grant
	if err := json.Unmarshal(body, &g); err != nil {
		return err
	}
	var d details
	d.add("id", g.ID)
	d.add("state", string(g.State))
	d.add("dataset", g.Dataset)
	d.add("dept", g.Dept)
	d.add("owner", g.Owner)
	d.add("requester", who(g.Requester.Subject, g.Requester.Dept))
	d.add("purpose", g.Purpose)
	d.add("fields", treatments(g.Fields))
	d.add("valid from", hubTime(g.ValidFrom))
	d.add("valid until", hubTime(g.ValidUntil))
	d.terms(g.MaxRows, g.MinK, g.MinL)
	d.add("request", g.Request)
	return d.print(w, g.History)
}

func showDemand(w io.Writer, body []byte) error {
	var m hub.Demand
	if err := json.Unmarshal(body, &m); err != nil {
		return err
	}
	var d details
	d.add("id", m.ID)
	d.add("state", string(m.State))
	d.add("owner", m.Owner)
	d.add("description", m.Description)
	d.add("purpose", m.Purpose)
	d.add("requester", who(m.Requester.Subject, m.Requester.Dept))
	d.add("created", hubTime(m.Created))
	d.add("due", hubTime(m.Due))
	d.add("dataset", m.Dataset)
	d.decided(m.Decision)
	return d.print(w, m.History)
}
