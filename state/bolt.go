package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Bolt is the embedded ledger and answer cache: one bbolt file, every
// commit fsync'd before it returns, so budgets survive restarts and
// crashes. The file is locked while open: one process at a time (replicas
// share Redis instead). Concurrent charges in one process are committed
// in groups, one fsync per group.
type Bolt struct {
	db *bolt.DB
}

var (
	_ Ledger = (*Bolt)(nil)
	_ Cache  = (*Bolt)(nil)
)

var (
	accountsBucket = []byte("accounts")
	chargesBucket  = []byte("charges")
	answersBucket  = []byte("answers")
)

// ErrLocked is returned by [OpenBolt] when another process (a running
// gateway) has the state file open.
var ErrLocked = errors.New("the state file is open in another process")

// OpenBolt opens (creating it and its directory if needed) the state file
// at path. It fails after a few seconds when another process holds it.
func OpenBolt(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("state: open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{accountsBucket, chargesBucket, answersBucket, revocationsBucket, metaBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if meta := tx.Bucket(metaBucket); meta.Get(revVersionKey) == nil {
			return meta.Put(revVersionKey, []byte(newVersion()))
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("state: initialise %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

// Close closes the file.
func (b *Bolt) Close() error { return b.db.Close() }

// Ping reports whether the state file can be read: a closed or broken
// database fails it.
func (b *Bolt) Ping(ctx context.Context) error {
	return b.db.View(func(tx *bolt.Tx) error { return nil })
}

// accountID is the key of an account: the scope, length-prefixed so no
// two (scope, key) pairs share an id, then the account's key.
func accountID(scope, key string) []byte {
	k := binary.AppendUvarint(nil, uint64(len(scope)))
	k = append(k, scope...)
	return append(k, key...)
}

func readAmount(bk *bolt.Bucket, key []byte) (amount, error) {
	v := bk.Get(key)
	if v == nil {
		return amount{}, nil
	}
	if len(v) != 16 {
		return amount{}, fmt.Errorf("state: corrupt account record (%d bytes)", len(v))
	}
	return amount{int64(binary.BigEndian.Uint64(v)), int64(binary.BigEndian.Uint64(v[8:]))}, nil
}

func putAmount(bk *bolt.Bucket, key []byte, a amount) error {
	var v [16]byte
	binary.BigEndian.PutUint64(v[:], uint64(a.Eps))
	binary.BigEndian.PutUint64(v[8:], uint64(a.Delta))
	return bk.Put(key, v[:])
}

// Charge implements [Ledger]. The check and every write happen in one
// bbolt transaction, which is durable when Charge returns.
func (b *Bolt) Charge(ctx context.Context, c Charge) (Receipt, error) {
	p, err := c.plan()
	if err != nil {
		return Receipt{}, err
	}
	if err := ctx.Err(); err != nil {
		return Receipt{}, err
	}
	// Batch may run fn more than once; it only reports the outcome of its
	// last run, and a refusal is an outcome, not a failed transaction.
	var (
		receipt Receipt
		outcome error
	)
	err = b.db.Batch(func(tx *bolt.Tx) error {
		receipt, outcome = Receipt{}, nil
		charges, accounts := tx.Bucket(chargesBucket), tx.Bucket(accountsBucket)
		if v := charges.Get([]byte(c.RequestID)); v != nil {
			var r chargeRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("state: corrupt charge record: %w", err)
			}
			receipt, outcome = r.replay(p)
			return nil
		}
		ids := make([][]byte, len(p.keys))
		spent := make([]amount, len(p.keys))
		for i, k := range p.keys {
			ids[i] = accountID(p.scope, k)
			var err error
			if spent[i], err = readAmount(accounts, ids[i]); err != nil {
				return err
			}
		}
		after, refused := p.apply(spent)
		if refused != nil {
			outcome = refused
			return nil
		}
		for i, id := range ids {
			if err := putAmount(accounts, id, after[i]); err != nil {
				return err
			}
		}
		rec, err := json.Marshal(p.record(after))
		if err != nil {
			return err
		}
		if err := charges.Put([]byte(c.RequestID), rec); err != nil {
			return err
		}
		receipt = Receipt{Spent: budgets(after)}
		return nil
	})
	if err != nil {
		return Receipt{}, fmt.Errorf("state: charge: %w", err)
	}
	return receipt, outcome
}

// Spent implements [Ledger].
func (b *Bolt) Spent(ctx context.Context, scope string, keys ...string) ([]Budget, error) {
	out := make([]Budget, len(keys))
	err := b.db.View(func(tx *bolt.Tx) error {
		accounts := tx.Bucket(accountsBucket)
		for i, k := range keys {
			a, err := readAmount(accounts, accountID(scope, k))
			if err != nil {
				return err
			}
			out[i] = a.budget()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("state: spent: %w", err)
	}
	return out, nil
}

// Answer implements [Cache].
func (b *Bolt) Answer(ctx context.Context, key string) ([]byte, bool, error) {
	var out []byte
	err := b.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(answersBucket).Get([]byte(key)); v != nil {
			out = bytes.Clone(v) // bbolt's memory is valid only inside the transaction
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("state: answer: %w", err)
	}
	return out, out != nil, nil
}

// StoreAnswer implements [Cache].
func (b *Bolt) StoreAnswer(ctx context.Context, key string, answer []byte) ([]byte, error) {
	if key == "" || len(answer) == 0 {
		return nil, errEmptyAnswer
	}
	var out []byte
	err := b.db.Batch(func(tx *bolt.Tx) error {
		bk := tx.Bucket(answersBucket)
		if v := bk.Get([]byte(key)); v != nil {
			out = bytes.Clone(v)
			return nil
		}
		out = bytes.Clone(answer)
		return bk.Put([]byte(key), out)
	})
	if err != nil {
		return nil, fmt.Errorf("state: store answer: %w", err)
	}
	return out, nil
}
