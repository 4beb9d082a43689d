package anonymize

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// An Operator releases one field's value in a treated form.
type Operator interface {
	// Apply appends the released form of v to dst as JSON. It returns false,
	// leaving dst as it was, when it cannot handle v; the transform then
	// redacts the value and counts a fallback.
	Apply(dst []byte, v Value, env *Env) ([]byte, bool)
}

// Factory builds an operator from the parameters a decision gives it. It
// rejects parameters it does not know.
type Factory func(p Params) (Operator, error)

// registry maps operator names to factories. It is filled at init time and
// read-only afterwards.
var registry = map[string]Factory{}

func register(name string, f Factory) {
	if _, dup := registry[name]; dup {
		panic("anonymize: operator registered twice: " + name)
	}
	registry[name] = f
}

// Operators returns the names of the registered operators, sorted.
func Operators() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Params are an operator's parameters as a decision states them: the
// decision's object minus "op".
type Params map[string]any

// check fails when p names a parameter outside allowed.
func (p Params) check(allowed ...string) error {
	for k := range p {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return fmt.Errorf("unknown parameter %q", k)
		}
	}
	return nil
}

// Int returns the non-negative integer parameter name, or def when absent.
func (p Params) Int(name string, def int) (int, error) {
	v, ok := p[name]
	if !ok {
		return def, nil
	}
	var n int
	switch x := v.(type) {
	case int:
		n = x
	case int64:
		n = int(x)
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<30 {
			return 0, fmt.Errorf("%s: want an integer, got %v", name, x)
		}
		n = int(x)
	case interface{ Float64() (float64, error) }: // json.Number, 3 or 3.0
		f, err := x.Float64()
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<30 {
			return 0, fmt.Errorf("%s: want an integer, got %v", name, x)
		}
		n = int(f)
	default:
		return 0, fmt.Errorf("%s: want an integer, got %T", name, v)
	}
	if n < 0 || n > 1<<20 {
		return 0, fmt.Errorf("%s: %d out of range", name, n)
	}
	return n, nil
}

// Number returns the finite number parameter name, or def when absent.
func (p Params) Number(name string, def float64) (float64, error) {
	v, ok := p[name]
	if !ok {
		return def, nil
	}
	var f float64
	switch x := v.(type) {
	case int:
		f = float64(x)
	case int64:
		f = float64(x)
	case float64:
		f = x
	case interface{ Float64() (float64, error) }: // json.Number
		var err error
		if f, err = x.Float64(); err != nil {
			return 0, fmt.Errorf("%s: want a number, got %v", name, x)
		}
	default:
		return 0, fmt.Errorf("%s: want a number, got %T", name, v)
	}
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%s: want a finite number, got %v", name, f)
	}
	return f, nil
}

// String returns the string parameter name, or def when absent.
func (p Params) String(name, def string) (string, error) {
	v, ok := p[name]
	if !ok {
		return def, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: want a string, got %T", name, v)
	}
	return s, nil
}

// Env carries what operators need to know about the request being answered.
// An Env is used by one transform at a time.
type Env struct {
	Keys *Keys
	// Issuer is the caller's token issuer ("iss"): organisation names are
	// only unique per issuer, so pseudonym scopes that name an
	// organisation name its issuer too.
	Issuer string
	// Org is the caller's organisation: the token's "dept" claim, else
	// "azp", else "client_id", as the gateway's principal states it. ""
	// when the token names none; each subject then counts as an
	// organisation of its own, so callers without one never share
	// pseudonyms.
	Org string
	// Consumer is the caller's subject id ("sub").
	Consumer string
	// Purpose is the purpose the request is made for (Sluice-Purpose, else
	// the token's purpose claim); "" when none was stated.
	Purpose string
	// Dataset is "source/dataset".
	Dataset string
	// Now is the clock that ages are computed against (generalize to
	// "age") and that picks the period of a rotating pseudonym scope; nil
	// means time.Now. A transform reads it once, so every record of a
	// release is aged on the same day and pseudonymised in the same
	// period.
	Now func() time.Time

	macs []scopedMAC
	sum  []byte // a pseudonym's MAC, reused across values
	// today is the time a transform started, read from Now.
	today time.Time
}

// start readies the Env for one transform.
func (e *Env) start() {
	if e == nil {
		return
	}
	e.today = e.clock()
}

func (e *Env) clock() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

// now is the time the current transform started.
func (e *Env) now() time.Time {
	if e == nil {
		return time.Now()
	}
	if e.today.IsZero() {
		e.today = e.clock()
	}
	return e.today
}
