package state

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Revocations is the list of revoked tokens, by token id (a JWT's "jti").
// Gateways keep a copy and poll [Revocations.Revoked] for changes, so the
// list carries a version that changes with every revocation.
type Revocations interface {
	// Revoke adds id to the list until expires, when the token is refused
	// as expired anyway; revoking an id again keeps the later expiry.
	// Entries past their expiry may be dropped.
	Revoke(ctx context.Context, id string, expires time.Time) error
	// Revoked returns the list unless its version is since, in which case
	// it returns only the version (Changed false). Pass "" for the list.
	Revoked(ctx context.Context, since string) (RevocationList, error)
}

// RevocationList is the list of revoked token ids at one version.
type RevocationList struct {
	// Version changes with every revocation; it never comes back, even
	// when a backend loses its data and starts over.
	Version string
	// Changed is false when the version is the one asked about; IDs is
	// then nil.
	Changed bool
	// IDs maps each revoked token id to its expiry.
	IDs map[string]time.Time
}

var errEmptyRevocation = errors.New("state: a revocation needs a token id and an expiry")

// newVersion returns a version no backend has handed out before.
func newVersion() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var (
	_ Revocations = (*Memory)(nil)
	_ Revocations = (*Bolt)(nil)
)

// Revoke implements [Revocations].
func (m *Memory) Revoke(ctx context.Context, id string, expires time.Time) error {
	if id == "" || expires.IsZero() {
		return errEmptyRevocation
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.revoked == nil {
		m.revoked = map[string]time.Time{}
	}
	now := time.Now()
	for k, exp := range m.revoked {
		if exp.Before(now) {
			delete(m.revoked, k)
		}
	}
	if expires.After(m.revoked[id]) {
		m.revoked[id] = expires
	}
	m.revVersion = newVersion()
	return nil
}

// Revoked implements [Revocations].
func (m *Memory) Revoked(ctx context.Context, since string) (RevocationList, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.revVersion == "" {
		m.revVersion = newVersion()
	}
	if since == m.revVersion {
		return RevocationList{Version: m.revVersion}, nil
	}
	ids := maps.Clone(m.revoked)
	if ids == nil {
		ids = map[string]time.Time{}
	}
	return RevocationList{Version: m.revVersion, Changed: true, IDs: ids}, nil
}

var (
	revocationsBucket = []byte("revocations")
	metaBucket        = []byte("meta")
	revVersionKey     = []byte("revocations_version")
)

// Revoke implements [Revocations]: the revocation is durable when it
// returns. The file is locked by the gateway that has it open, so a
// running embedded gateway takes revocations through its admin endpoint.
func (b *Bolt) Revoke(ctx context.Context, id string, expires time.Time) error {
	if id == "" || expires.IsZero() {
		return errEmptyRevocation
	}
	now := time.Now()
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(revocationsBucket)
		var stale [][]byte
		err := bk.ForEach(func(k, v []byte) error {
			if len(v) == 8 && time.Unix(0, int64(binary.BigEndian.Uint64(v))).Before(now) {
				stale = append(stale, k)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		if v := bk.Get([]byte(id)); len(v) == 8 && int64(binary.BigEndian.Uint64(v)) >= expires.UnixNano() {
			return tx.Bucket(metaBucket).Put(revVersionKey, []byte(newVersion()))
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(expires.UnixNano()))
		if err := bk.Put([]byte(id), v[:]); err != nil {
			return err
		}
		return tx.Bucket(metaBucket).Put(revVersionKey, []byte(newVersion()))
	})
	if err != nil {
		return fmt.Errorf("state: revoke: %w", err)
	}
	return nil
}

// Revoked implements [Revocations].
func (b *Bolt) Revoked(ctx context.Context, since string) (RevocationList, error) {
	var list RevocationList
	err := b.db.View(func(tx *bolt.Tx) error {
		list.Version = string(tx.Bucket(metaBucket).Get(revVersionKey))
		if list.Version == since {
			return nil
		}
		list.Changed, list.IDs = true, map[string]time.Time{}
		return tx.Bucket(revocationsBucket).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("corrupt revocation of %q", k)
			}
			list.IDs[string(k)] = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			return nil
		})
	})
	if err != nil {
		return RevocationList{}, fmt.Errorf("state: revocations: %w", err)
	}
	return list, nil
}
