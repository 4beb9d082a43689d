package hub

import "strings"

// Sharing is a dataset's sharing class in the catalogue (无条件共享 /
// 有条件共享 / 不予共享).
type Sharing string

// The sharing classes.
const (
	// Unconditional: a request is approved at once and a grant made.
	Unconditional Sharing = "unconditional"
	// Conditional: a steward of the owning department decides.
	Conditional Sharing = "conditional"
	// None: no request is taken; the dataset's basis says why.
	None Sharing = "none"
)

// Dataset is what the hub needs of a catalogue entry to take a request
// for it. The gateway builds it from its configuration.
type Dataset struct {
	// Name is "source/dataset".
	Name string
	// Sharing is the dataset's class.
	Sharing Sharing
	// Owner is the owning department, whose stewards decide.
	Owner string
	// Basis is the rule that forbids sharing a dataset of class None.
	Basis string
}

// Admit is the catalogue's answer to a request for d, at submission: nil
// when a request may be filed (and, for Unconditional, approved at once:
// see [Dataset.ApprovesAtOnce]); for None, an ErrForbidden refusal naming
// the basis.
func (d Dataset) Admit() error {
	switch d.Sharing {
	case Unconditional, Conditional:
		if d.Owner == "" {
			return refuse(ErrBadRequest, "dataset %s has no owning department to decide", d.Name)
		}
		return nil
	case None:
		if d.Basis == "" {
			return refuse(ErrForbidden, "dataset %s is not shared", d.Name)
		}
		return refuse(ErrForbidden, "dataset %s is not shared: %s", d.Name, d.Basis)
	}
	return refuse(ErrForbidden, "dataset %s is not open to requests (sharing %q)", d.Name, d.Sharing)
}

// ApprovesAtOnce reports whether a request for d is approved by the
// system as it is submitted.
func (d Dataset) ApprovesAtOnce() bool { return d.Sharing == Unconditional }

// validDatasetName reports whether name is "source/dataset".
func validDatasetName(name string) bool {
	src, ds, ok := strings.Cut(name, "/")
	return ok && src != "" && ds != "" && !strings.Contains(ds, "/")
}
