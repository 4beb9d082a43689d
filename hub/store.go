package hub

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Store keeps requests, grants, demands, objections and notices. Every write is atomic and
// durable when it returns (as durable as the backend: see [Bolt] and
// [Redis]). Reads return copies: changing one changes nothing stored.
//
// Updates are compare-and-set: fn sees the object as stored and its
// change is written only if no other write came in between; otherwise fn
// runs again on the newer object. So two stewards deciding one request
// at once both run [Request.Apply], and the one that comes second sees
// the request decided and gets ErrConflict. fn may run more than once and
// must change nothing but its argument.
type Store interface {
	// CreateRequest stores a new request and, for an approval at
	// submission, its grant (g may be nil), in one write.
	CreateRequest(ctx context.Context, r *Request, g *Grant) error
	// Request returns the request with id, or ErrNotFound.
	Request(ctx context.Context, id string) (*Request, error)
	// Requests returns the requests f passes, oldest first.
	Requests(ctx context.Context, f Filter) ([]*Request, error)
	// UpdateRequest changes request id by fn. When fn returns a grant
	// (an approval's), it is created in the same write.
	UpdateRequest(ctx context.Context, id string, fn func(*Request) (*Grant, error)) (*Request, error)

	// Grant returns the grant with id, or ErrNotFound.
	Grant(ctx context.Context, id string) (*Grant, error)
	// Grants returns the grants f passes, oldest first.
	Grants(ctx context.Context, f Filter) ([]*Grant, error)
	// UpdateGrant changes grant id by fn.
	UpdateGrant(ctx context.Context, id string, fn func(*Grant) error) (*Grant, error)
	// GrantsVersion changes with every write of a grant or an objection
	// (its creation and every transition) and never comes back, even
	// when a backend loses its data. A replica polls it, cheaply, and reloads its grants
	// when it changed: polled every 250 ms, a revocation stops releases
	// on every replica within a second.
	GrantsVersion(ctx context.Context) (string, error)

	// CreateDemand stores a new demand.
	CreateDemand(ctx context.Context, d *Demand) error
	// Demand returns the demand with id, or ErrNotFound.
	Demand(ctx context.Context, id string) (*Demand, error)
	// Demands returns the demands f passes, oldest first.
	Demands(ctx context.Context, f Filter) ([]*Demand, error)
	// UpdateDemand changes demand id by fn.
	UpdateDemand(ctx context.Context, id string, fn func(*Demand) error) (*Demand, error)

	// CreateObjection stores a new objection. Its text must be sealed
	// (see [Objection]): one holding text in clear is refused, and
	// nothing is stored.
	CreateObjection(ctx context.Context, o *Objection) error
	// Objection returns the objection with id, or ErrNotFound, its text
	// sealed and without Acks.
	Objection(ctx context.Context, id string) (*Objection, error)
	// Objections returns the objections f passes, oldest first, as
	// Objection does.
	Objections(ctx context.Context, f Filter) ([]*Objection, error)
	// UpdateObjection changes objection id by fn, which must leave its
	// text sealed. The notices fn returns (a correction's) are created in
	// the same write.
	UpdateObjection(ctx context.Context, id string, fn func(*Objection) ([]*Notice, error)) (*Objection, error)

	// Notice returns the notice with id, or ErrNotFound.
	Notice(ctx context.Context, id string) (*Notice, error)
	// Notices returns the notices f passes, oldest first.
	Notices(ctx context.Context, f Filter) ([]*Notice, error)
	// UpdateNotice changes notice id by fn.
	UpdateNotice(ctx context.Context, id string, fn func(*Notice) error) (*Notice, error)
}

// Filter selects objects to list; an empty field selects all.
type Filter struct {
	// State is the object's state.
	State State
	// Dept is the department that asked: a request's or a demand's
	// requester's, a grant's grantee, an objection's filer's; for a
	// notice, the department it is sent to.
	Dept string
	// Subject is the subject who asked: a request's, a demand's or a
	// grant's requester, an objection's filer (a citizen has no
	// department). No notice has one.
	Subject string
	// Owner is the department owning the dataset, or asked by a demand.
	Owner string
	// Dataset is "source/dataset" (for a demand: the one published).
	Dataset string
	// RecordID is the record an objection or a notice is about (ids are
	// the dataset's: give Dataset too). No other object has one.
	RecordID string
	// Objection is the objection a notice is about. No other object
	// has one.
	Objection string
}

// facts are what a [Filter] looks at in an object.
type facts struct {
	state                                            State
	dept, subject, owner, dataset, record, objection string
}

func (f Filter) match(x facts) bool {
	return (f.State == "" || f.State == x.state) && (f.Dept == "" || f.Dept == x.dept) &&
		(f.Subject == "" || f.Subject == x.subject) && (f.Owner == "" || f.Owner == x.owner) &&
		(f.Dataset == "" || f.Dataset == x.dataset) && (f.RecordID == "" || f.RecordID == x.record) &&
		(f.Objection == "" || f.Objection == x.objection)
}

// kind names a collection of objects in a backend.
type kind string

const (
	kindRequest   kind = "requests"
	kindGrant     kind = "grants"
	kindDemand    kind = "demands"
	kindObjection kind = "objections"
	kindNotice    kind = "notices"
)

// kinds are every kind of object a backend keeps.
var kinds = []kind{kindRequest, kindGrant, kindDemand, kindObjection, kindNotice}

// doc is one object as a backend stores it: JSON under a kind and id.
type doc struct {
	kind kind
	id   string
	body []byte
}

// docs is what a backend provides: JSON documents by kind and id, written
// atomically, and the grants' version. Every write holding a grant
// changes the version in the same atomic step.
type docs interface {
	// get returns the document, or ErrNotFound.
	get(ctx context.Context, k kind, id string) ([]byte, error)
	// all returns every document of kind k.
	all(ctx context.Context, k kind) ([][]byte, error)
	// create writes new documents at once, none if any id is taken.
	create(ctx context.Context, ds []doc) error
	// update reads document (k, id) (ErrNotFound if there is none) and
	// writes what change returns in its place, and new documents beside
	// it, at once, provided the document is still as read; otherwise it
	// runs change again on the document as it is now.
	update(ctx context.Context, k kind, id string, change func(cur []byte) (body []byte, created []doc, err error)) error
	// version returns the grants' version.
	version(ctx context.Context) (string, error)
}

// maxRetries bounds how often an update runs again under contention; a
// hub object is decided by a few people, so this is never reached but by
// a fault.
const maxRetries = 100

var errContention = errors.New("hub: an object changed under every one of 100 attempts to update it")

// store implements [Store] over a backend's documents; the backends embed
// it.
type store struct{ d docs }

func notFound(k kind, id string) error {
	return refuse(ErrNotFound, "no %s has id %q", k[:len(k)-1], id)
}

func encode(k kind, id string, v any) (doc, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return doc{}, fmt.Errorf("hub: encode %s %s: %w", k, id, err)
	}
	return doc{kind: k, id: id, body: b}, nil
}

func get[T any](ctx context.Context, d docs, k kind, id string) (*T, error) {
	b, err := d.get(ctx, k, id)
	if errors.Is(err, ErrNotFound) {
		return nil, notFound(k, id)
	}
	if err != nil {
		return nil, err
	}
	v := new(T)
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("hub: corrupt %s %s: %w", k, id, err)
	}
	return v, nil
}

// list returns the documents of k that keep passes, ordered by created
// then id.
func list[T any](ctx context.Context, d docs, k kind, keep func(*T) bool, created func(*T) (int64, string)) ([]*T, error) {
	all, err := d.all(ctx, k)
	if err != nil {
		return nil, err
	}
	out := []*T{}
	for _, b := range all {
		v := new(T)
		if err := json.Unmarshal(b, v); err != nil {
			return nil, fmt.Errorf("hub: corrupt %s: %w", k, err)
		}
		if keep(v) {
			out = append(out, v)
		}
	}
	slices.SortFunc(out, func(a, b *T) int {
		at, aid := created(a)
		bt, bid := created(b)
		return cmp.Or(cmp.Compare(at, bt), cmp.Compare(aid, bid))
	})
	return out, nil
}

// update runs change on the object (k, id) under the backend's
// compare-and-set and returns the object as written.
func update[T any](ctx context.Context, d docs, k kind, id string, change func(*T) ([]doc, error)) (*T, error) {
	var out *T
	err := d.update(ctx, k, id, func(cur []byte) ([]byte, []doc, error) {
		v := new(T)
		if err := json.Unmarshal(cur, v); err != nil {
			return nil, nil, fmt.Errorf("hub: corrupt %s %s: %w", k, id, err)
		}
		created, err := change(v)
		if err != nil {
			return nil, nil, err
		}
		next, err := encode(k, id, v)
		if err != nil {
			return nil, nil, err
		}
		out = v
		return next.body, created, nil
	})
	if errors.Is(err, ErrNotFound) {
		return nil, notFound(k, id)
	}
	return out, err
}

// CreateRequest implements [Store].
func (s store) CreateRequest(ctx context.Context, r *Request, g *Grant) error {
	rd, err := encode(kindRequest, r.ID, r)
	if err != nil {
		return err
	}
	ds := []doc{rd}
	if g != nil {
		gd, err := encode(kindGrant, g.ID, g)
		if err != nil {
			return err
		}
		ds = append(ds, gd)
	}
	return s.d.create(ctx, ds)
}

// Request implements [Store].
func (s store) Request(ctx context.Context, id string) (*Request, error) {
	return get[Request](ctx, s.d, kindRequest, id)
}

// Requests implements [Store].
func (s store) Requests(ctx context.Context, f Filter) ([]*Request, error) {
	return list(ctx, s.d, kindRequest, func(r *Request) bool { return r.matches(f) },
		func(r *Request) (int64, string) { return r.Created.UnixNano(), r.ID })
}

// UpdateRequest implements [Store].
func (s store) UpdateRequest(ctx context.Context, id string, fn func(*Request) (*Grant, error)) (*Request, error) {
	return update(ctx, s.d, kindRequest, id, func(r *Request) ([]doc, error) {
		g, err := fn(r)
		if err != nil || g == nil {
			return nil, err
		}
		gd, err := encode(kindGrant, g.ID, g)
		return []doc{gd}, err
	})
}

// Grant implements [Store].
func (s store) Grant(ctx context.Context, id string) (*Grant, error) {
	return get[Grant](ctx, s.d, kindGrant, id)
}

// Grants implements [Store].
func (s store) Grants(ctx context.Context, f Filter) ([]*Grant, error) {
	return list(ctx, s.d, kindGrant, func(g *Grant) bool { return g.matches(f) },
		func(g *Grant) (int64, string) { return g.ValidFrom.UnixNano(), g.ID })
}

// UpdateGrant implements [Store].
func (s store) UpdateGrant(ctx context.Context, id string, fn func(*Grant) error) (*Grant, error) {
	return update(ctx, s.d, kindGrant, id, func(g *Grant) ([]doc, error) { return nil, fn(g) })
}

// GrantsVersion implements [Store].
func (s store) GrantsVersion(ctx context.Context) (string, error) { return s.d.version(ctx) }

// CreateDemand implements [Store].
func (s store) CreateDemand(ctx context.Context, d *Demand) error {
	dd, err := encode(kindDemand, d.ID, d)
	if err != nil {
		return err
	}
	return s.d.create(ctx, []doc{dd})
}

// Demand implements [Store].
func (s store) Demand(ctx context.Context, id string) (*Demand, error) {
	return get[Demand](ctx, s.d, kindDemand, id)
}

// Demands implements [Store].
func (s store) Demands(ctx context.Context, f Filter) ([]*Demand, error) {
	return list(ctx, s.d, kindDemand, func(d *Demand) bool { return d.matches(f) },
		func(d *Demand) (int64, string) { return d.Created.UnixNano(), d.ID })
}

// UpdateDemand implements [Store].
func (s store) UpdateDemand(ctx context.Context, id string, fn func(*Demand) error) (*Demand, error) {
	return update(ctx, s.d, kindDemand, id, func(d *Demand) ([]doc, error) { return nil, fn(d) })
}

// errInClear refuses to store an objection whose text is not sealed: a
// fault of the code, never of a caller, so not an [*Error].
var errInClear = errors.New("hub: an objection's text must be sealed before it is stored")

// storable is o as a store keeps it: its text sealed (else errInClear),
// and without the acknowledgements, which are the notices'.
func storable(o *Objection) (*Objection, error) {
	if o.inClear() {
		return nil, errInClear
	}
	c := *o
	c.Acks = nil
	return &c, nil
}

// CreateObjection implements [Store].
func (s store) CreateObjection(ctx context.Context, o *Objection) error {
	o, err := storable(o)
	if err != nil {
		return err
	}
	od, err := encode(kindObjection, o.ID, o)
	if err != nil {
		return err
	}
	return s.d.create(ctx, []doc{od})
}

// Objection implements [Store].
func (s store) Objection(ctx context.Context, id string) (*Objection, error) {
	return get[Objection](ctx, s.d, kindObjection, id)
}

// Objections implements [Store].
func (s store) Objections(ctx context.Context, f Filter) ([]*Objection, error) {
	return list(ctx, s.d, kindObjection, func(o *Objection) bool { return o.matches(f) },
		func(o *Objection) (int64, string) { return o.Created.UnixNano(), o.ID })
}

// UpdateObjection implements [Store].
func (s store) UpdateObjection(ctx context.Context, id string, fn func(*Objection) ([]*Notice, error)) (*Objection, error) {
	return update(ctx, s.d, kindObjection, id, func(o *Objection) ([]doc, error) {
		ns, err := fn(o)
		if err != nil {
			return nil, err
		}
		if o.inClear() {
			return nil, errInClear
		}
		o.Acks = nil
		var ds []doc
		for _, n := range ns {
			nd, err := encode(kindNotice, n.ID, n)
			if err != nil {
				return nil, err
			}
			ds = append(ds, nd)
		}
		return ds, nil
	})
}

// Notice implements [Store].
func (s store) Notice(ctx context.Context, id string) (*Notice, error) {
	return get[Notice](ctx, s.d, kindNotice, id)
}

// Notices implements [Store].
func (s store) Notices(ctx context.Context, f Filter) ([]*Notice, error) {
	return list(ctx, s.d, kindNotice, func(n *Notice) bool { return n.matches(f) },
		func(n *Notice) (int64, string) { return n.Created.UnixNano(), n.ID })
}

// UpdateNotice implements [Store].
func (s store) UpdateNotice(ctx context.Context, id string, fn func(*Notice) error) (*Notice, error) {
	return update(ctx, s.d, kindNotice, id, func(n *Notice) ([]doc, error) { return nil, fn(n) })
}

// holdsGrant reports whether a write of ds changes the grants' version:
// a write holding a grant or an objection, the objects every replica
// keeps a copy of (the grants in force, the records under objection).
func holdsGrant(k kind, ds []doc) bool {
	copied := func(k kind) bool { return k == kindGrant || k == kindObjection }
	return copied(k) || slices.ContainsFunc(ds, func(d doc) bool { return copied(d.kind) })
}

// newID returns prefix and 20 random base-32 characters (100 bits).
func newID(prefix string) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	var b [20]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[b[i]%32]
	}
	return prefix + string(b[:])
}

// newVersion returns a grants version no backend has handed out before.
func newVersion() string { return newID("v") }

// errTaken refuses to create an object whose id is taken.
func errTaken(k kind, id string) error {
	return refuse(ErrConflict, "%s with id %q exists", article(string(k[:len(k)-1])), id)
}
