package policy

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Grant is an approved sharing request in force for the caller: its
// department's active grant on the resource, for the request's purpose.
// The gateway puts only those in the input (input.grants); the policy
// decides what each lets the caller read.
type Grant struct {
	// ID identifies the grant and its terms: two grants of one ID in any
	// inputs are the same grant (a grant's terms never change; the
	// decision cache keys grants by ID alone).
	ID      string `json:"id"`
	Dataset string `json:"dataset"`
	Dept    string `json:"dept"`
	Purpose string `json:"purpose"`
	// Fields are the granted treatments, by field: "keep", "drop", or
	// an operator object, as a decision's fields.
	Fields     map[string]any `json:"fields"`
	ValidUntil time.Time      `json:"valid_until"`
	// MaxRows caps a response under the grant; 0 is none.
	MaxRows int `json:"max_rows,omitempty"`
	// MinK and MinL are the k-anonymity the approval asked for; 0 none.
	MinK int `json:"min_k,omitempty"`
	MinL int `json:"min_l,omitempty"`
}

// grantsValue is the input's grants as the policy reads them: an array,
// empty when there are none (so `some g in input.grants` reads simply).
func grantsValue(gs []Grant) []any {
	out := make([]any, len(gs))
	for i, g := range gs {
		out[i] = map[string]any{"id": g.ID, "dataset": g.Dataset, "dept": g.Dept, "purpose": g.Purpose,
			"fields": g.Fields, "valid_until": g.ValidUntil.UTC().Format(time.RFC3339), "max_rows": g.MaxRows,
			"min_k": g.MinK, "min_l": g.MinL}
	}
	return out
}

// grantsTerm is grantsValue as OPA's value.
func grantsTerm(gs []Grant) (*ast.Term, error) {
	if len(gs) == 0 {
		return ast.ArrayTerm(), nil
	}
	v, err := ast.InterfaceToValue(grantsValue(gs))
	if err != nil {
		return nil, fmt.Errorf("input grants: %w", err)
	}
	return ast.NewTerm(v), nil
}

// appendGrantsKey appends the grants' part of a decision cache key: their
// IDs, which name their terms, length-prefixed.
func appendGrantsKey(dst []byte, gs []Grant) ([]byte, bool) {
	dst = binary.AppendUvarint(dst, uint64(len(gs)))
	for _, g := range gs {
		dst = appendStr(dst, g.ID)
	}
	return dst, true
}
