package gateway

// POST /v1/requests/preview: what a grant of the request would release
// to the caller, decided by the policy in force exactly as a read under
// the grant would be (input.grants holding the grant the request asks
// for), with one made-up record of each field's type released through the
// decision — the caller sees treatments and their effect before asking,
// and no record of the department's is read.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"time"

	"github.com/sluicegw/sluice/anonymize"
	"github.com/sluicegw/sluice/hub"
	"github.com/sluicegw/sluice/policy"
)

// examples are a made-up value of each field type, to show a treatment's
// effect; a type not listed shows "example".
var examples = map[string]any{
	"id_cn": "110105199001011234", "name_cn": "欧阳娜", "phone_cn": "13812345678", "date": "2026-03-17",
	"integer": 3456, "number": 3456.5, "icd10": "I10", "string": "example", "address_cn": "北京市朝阳区建国路88号",
	"email": "name@example.cn",
}

// Preview is the answer of POST /v1/requests/preview.
type Preview struct {
	Dataset string `json:"dataset"`
	// Allowed says whether the caller would read under such a grant at
	// all (its role uses grants, it states the purpose); Reason is the
	// policy's.
	Allowed bool           `json:"allowed"`
	Reason  string         `json:"reason"`
	Fields  []PreviewField `json:"fields,omitempty"`
	MaxRows int            `json:"max_rows,omitempty"`
	MinK    int            `json:"min_k,omitempty"`
	MinL    int            `json:"min_l,omitempty"`
}

// PreviewField is one field as the grant would release it.
type PreviewField struct {
	Name      string         `json:"name"`
	Level     string         `json:"level,omitempty"`
	Treatment anonymize.Rule `json:"treatment"`
	Example   struct {
		Raw      any `json:"raw"`
		Released any `json:"released"`
	} `json:"example"`
}

func (s *Server) previewRequest(ctx context.Context, r *http.Request, x *exchange) (int, any, *Error) {
	var in struct {
		hub.Submission
		Conditions *hub.Conditions `json:"conditions"`
	}
	if e := readBody(r, &in); e != nil {
		return 0, nil, e
	}
	ds := s.datasetNamed(in.Dataset)
	if ds == nil {
		return 0, nil, errNotFound("no such dataset: " + in.Dataset)
	}
	if len(in.Fields) == 0 {
		return 0, nil, errBadRequest("name the fields to preview")
	}
	x.ev.Source, x.ev.Dataset = ds.src.cfg.Name, ds.cfg.Name
	if in.Purpose != "" {
		x.purpose = in.Purpose
	}
	g := policy.Grant{Dataset: in.Dataset, Dept: x.principal.Dept, Purpose: x.purpose,
		Fields: map[string]any{}, ValidUntil: s.now().Add(24 * time.Hour)}
	for _, f := range in.Fields {
		if _, ok := ds.cfg.Fields[f]; !ok && ds.cfg.Fields != nil {
			return 0, nil, errBadRequest("the dataset has no field " + f)
		}
		g.Fields[f] = hub.TreatmentCeiling
	}
	if c := in.Conditions; c != nil {
		for f, t := range c.Fields {
			if _, asked := g.Fields[f]; !asked {
				return 0, nil, errBadRequest("conditions name field " + f + ", which the request does not")
			}
			g.Fields[f] = t
		}
		g.MaxRows, g.MinK, g.MinL = c.MaxRows, c.MinK, c.MinL
	}
	// The decision cache keys grants by ID: the preview's names its terms.
	terms, _ := json.Marshal(g)
	sum := sha256.Sum256(terms)
	g.ID = "grt_preview_" + hex.EncodeToString(sum[:12])
	pin := s.input(x, r, "read", ds)
	pin.Purpose, pin.Grants = x.purpose, []policy.Grant{g}
	d := s.decide(ctx, x, s.policies.Current(), pin)
	p := &Preview{Dataset: in.Dataset, Allowed: d.Allow && d.Grant == g.ID, Reason: d.Reason}
	if !p.Allowed {
		if d.Allow {
			p.Reason = "this caller reads the dataset by its role's own rule, not under a grant: " + d.Reason
		}
		return http.StatusOK, p, nil
	}
	p.MaxRows, p.MinK, p.MinL = d.MaxRows, d.MinK, d.MinL
	raw := map[string]any{}
	for _, f := range in.Fields {
		v, ok := examples[ds.cfg.Fields[f].Type]
		if !ok {
			v = "example"
		}
		raw[f] = v
	}
	released, e := s.releaseExample(x, ds, d, raw)
	if e != nil {
		return 0, nil, e
	}
	for _, f := range in.Fields {
		pf := PreviewField{Name: f, Level: ds.cfg.Fields[f].Level, Treatment: d.Fields[f]}
		if pf.Treatment.Op == "" {
			pf.Treatment = anonymize.Rule{Op: "drop"}
		}
		pf.Example.Raw, pf.Example.Released = raw[f], released[f]
		p.Fields = append(p.Fields, pf)
	}
	return http.StatusOK, p, nil
}

// releaseExample runs one made-up record through d's transform, as the
// caller would receive it.
func (s *Server) releaseExample(x *exchange, ds *dataset, d *policy.Decision, rec map[string]any) (map[string]any, *Error) {
	body, err := json.Marshal(map[string]any{"items": []any{rec}})
	if err != nil {
		return nil, errInternal(err)
	}
	var out struct {
		Items []map[string]any `json:"items"`
	}
	var buf bytes.Buffer
	if _, err := d.Plan.Transform(&buf, bytes.NewReader(body), anonymize.Shape{Records: "items"}, s.env(x), anonymize.Limits{}); err != nil {
		return nil, errInternal(err)
	}
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil || len(out.Items) != 1 {
		return map[string]any{}, nil
	}
	return out.Items[0], nil
}
