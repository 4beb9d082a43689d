package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bolt is the embedded [Store]: a bbolt database, every write one
// transaction fsync'd before it returns. bbolt runs one write
// transaction at a time, and an update reads, decides and writes inside
// it, so a compare-and-set never has to retry.
//
// The hub's buckets (hub_requests, hub_grants, hub_demands,
// hub_objections, hub_notices, hub_meta) may
// share a database with other users of it; state.Bolt keeps its own file
// locked, so the gateway opens the hub's beside it (see [OpenBolt]).
type Bolt struct {
	store
	db    *bolt.DB
	owned bool // Close closes db
}

var _ Store = (*Bolt)(nil)

var (
	hubMeta       = []byte("hub_meta")
	grantsVersion = []byte("grants_version")
)

func bucket(k kind) []byte { return []byte("hub_" + string(k)) }

// OpenBolt opens (creating it and its directory if needed) the hub's
// database at path. It fails after a few seconds when another process
// holds it.
func OpenBolt(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("hub: open %s: %w", path, err)
	}
	b, err := NewBolt(db)
	if err != nil {
		db.Close()
		return nil, err
	}
	b.owned = true
	return b, nil
}

// OpenBoltReadOnly opens the hub's database at path to read it, as a tool
// beside a running gateway would: it fails after timeout while a
// gateway holds it (bbolt's lock), and when the file does not exist. Its
// updates fail.
func OpenBoltReadOnly(path string, timeout time.Duration) (*Bolt, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("hub: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("hub: open %s: %w", path, err)
	}
	b := &Bolt{db: db, owned: true}
	b.store = store{(*boltDocs)(b)}
	return b, nil
}

// NewBolt keeps the hub in db, which the caller opened and closes,
// creating the hub's buckets if needed.
func NewBolt(db *bolt.DB) (*Bolt, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, k := range kinds {
			if _, err := tx.CreateBucketIfNotExists(bucket(k)); err != nil {
				return err
			}
		}
		meta, err := tx.CreateBucketIfNotExists(hubMeta)
		if err != nil {
			return err
		}
		if meta.Get(grantsVersion) == nil {
			return meta.Put(grantsVersion, []byte(newVersion()))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hub: initialise %s: %w", db.Path(), err)
	}
	b := &Bolt{db: db}
	b.store = store{(*boltDocs)(b)}
	return b, nil
}

// Close closes the database if [OpenBolt] opened it.
func (b *Bolt) Close() error {
	if !b.owned {
		return nil
	}
	return b.db.Close()
}

// boltDocs is Bolt's documents; a separate type keeps the docs methods
// off Bolt's exported surface.
type boltDocs Bolt

func (b *boltDocs) get(ctx context.Context, k kind, id string) ([]byte, error) {
	var out []byte
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket(k))
		if bk == nil {
			return nil // a read-only file a gateway before this kind wrote
		}
		if v := bk.Get([]byte(id)); v != nil {
			out = bytes.Clone(v) // bbolt's memory is valid only inside the transaction
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hub: read %s: %w", k, err)
	}
	if out == nil {
		return nil, ErrNotFound
	}
	return out, nil
}

func (b *boltDocs) all(ctx context.Context, k kind) ([][]byte, error) {
	var out [][]byte
	err := b.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket(k))
		if bk == nil {
			return nil // a read-only file a gateway before this kind wrote
		}
		return bk.ForEach(func(_, v []byte) error {
			out = append(out, bytes.Clone(v))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("hub: list %s: %w", k, err)
	}
	return out, nil
}

// refusal carries an outcome out of a bbolt transaction, which it rolls
// back, without it being mistaken for a failure of the database.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }

func (b *boltDocs) write(what string, fn func(tx *bolt.Tx) error) error {
	err := b.db.Update(fn)
	var r refusal
	if errors.As(err, &r) {
		return r.err
	}
	if err != nil {
		return fmt.Errorf("hub: %s: %w", what, err)
	}
	return nil
}

func (b *boltDocs) create(ctx context.Context, ds []doc) error {
	return b.write("create", func(tx *bolt.Tx) error { return put(tx, "", ds, true) })
}

func (b *boltDocs) update(ctx context.Context, k kind, id string, change func([]byte) ([]byte, []doc, error)) error {
	return b.write("update", func(tx *bolt.Tx) error {
		cur := tx.Bucket(bucket(k)).Get([]byte(id))
		if cur == nil {
			return refusal{ErrNotFound}
		}
		body, created, err := change(bytes.Clone(cur))
		if err != nil {
			return refusal{err}
		}
		if err := put(tx, "", created, true); err != nil {
			return err
		}
		return put(tx, k, []doc{{kind: k, id: id, body: body}}, false)
	})
}

// put writes ds in tx, each new if fresh, and a new grants version when
// k or one of ds is a grant.
func put(tx *bolt.Tx, k kind, ds []doc, fresh bool) error {
	for _, d := range ds {
		bk := tx.Bucket(bucket(d.kind))
		if fresh && bk.Get([]byte(d.id)) != nil {
			return refusal{errTaken(d.kind, d.id)}
		}
		if err := bk.Put([]byte(d.id), d.body); err != nil {
			return err
		}
	}
	if holdsGrant(k, ds) {
		return tx.Bucket(hubMeta).Put(grantsVersion, []byte(newVersion()))
	}
	return nil
}

func (b *boltDocs) version(ctx context.Context) (string, error) {
	var v string
	err := b.db.View(func(tx *bolt.Tx) error {
		v = string(tx.Bucket(hubMeta).Get(grantsVersion))
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hub: grants version: %w", err)
	}
	return v, nil
}
