package state

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Revocations is the list of revoked tokens: by token id (a JWT's "jti"),
// and by subject, for tokens that carry no id — every token an issuer gave
// a subject before a time. Gateways keep a copy and poll
// [Revocations.Revoked] for changes, so the list carries a version that
// changes with every revocation.
type Revocations interface {
	// Revoke adds id to the list until expires, when the token is refused
	// as expired anyway; revoking an id again keeps the later expiry.
	// Entries past their expiry may be dropped.
	Revoke(ctx context.Context, id string, expires time.Time) error
	// RevokeSubject revokes the tokens of s issued before
	// r.IssuedBefore, until r.Expires, when all of them have expired.
	// Revoking a subject again keeps the later of each time, so a
	// revocation never narrows. Entries past their expiry may be dropped.
	RevokeSubject(ctx context.Context, s RevokedSubject, r SubjectRevocation) error
	// Revoked returns the list unless its version is since, in which case
	// it returns only the version (Changed false). Pass "" for the list.
	Revoked(ctx context.Context, since string) (RevocationList, error)
}

// RevocationList is the list of revocations at one version.
type RevocationList struct {
	// Version changes with every revocation; it never comes back, even
	// when a backend loses its data and starts over.
	Version string
	// Changed is false when the version is the one asked about; IDs and
	// Subjects are then nil.
	Changed bool
	// IDs maps each revoked token id to its expiry.
	IDs map[string]time.Time
	// Subjects maps each subject whose tokens are revoked to the
	// revocation.
	Subjects map[RevokedSubject]SubjectRevocation
}

// RevokedSubject names whose tokens a subject revocation refuses: a
// subject ("sub") is only unique within its issuer ("iss").
type RevokedSubject struct {
	Issuer  string
	Subject string
}

// SubjectRevocation refuses a subject's tokens issued ("iat") before
// IssuedBefore; tokens issued later, such as the one the subject is given
// next, are not affected. It is kept until Expires.
type SubjectRevocation struct {
	IssuedBefore time.Time
	Expires      time.Time
}

// merge is the revocation covering both r and o: the later cutoff and the
// later expiry. Every backend keeps a repeated revocation this way (the
// Redis script mirrors it).
func (r SubjectRevocation) merge(o SubjectRevocation) SubjectRevocation {
	if o.IssuedBefore.After(r.IssuedBefore) {
		r.IssuedBefore = o.IssuedBefore
	}
	if o.Expires.After(r.Expires) {
		r.Expires = o.Expires
	}
	return r
}

var (
	errEmptyRevocation        = errors.New("state: a revocation needs a token id and an expiry")
	errEmptySubjectRevocation = errors.New("state: a subject revocation needs an issuer, a subject, a cutoff and an expiry")
)

func (s RevokedSubject) check(r SubjectRevocation) error {
	if s.Issuer == "" || s.Subject == "" || r.IssuedBefore.IsZero() || r.Expires.IsZero() {
		return errEmptySubjectRevocation
	}
	return nil
}

// key encodes s as one string, unambiguous whatever the issuer and
// subject hold: the Bolt key and the Redis hash field.
func (s RevokedSubject) key() string {
	b, _ := json.Marshal([2]string{s.Issuer, s.Subject})
	return string(b)
}

func subjectFromKey(k string) (RevokedSubject, error) {
	var v [2]string
	if err := json.Unmarshal([]byte(k), &v); err != nil || v[0] == "" || v[1] == "" {
		return RevokedSubject{}, fmt.Errorf("corrupt subject revocation key %q", k)
	}
	return RevokedSubject{Issuer: v[0], Subject: v[1]}, nil
}

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

// RevokeSubject implements [Revocations].
func (m *Memory) RevokeSubject(ctx context.Context, s RevokedSubject, r SubjectRevocation) error {
	if err := s.check(r); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.revokedSubjects == nil {
		m.revokedSubjects = map[RevokedSubject]SubjectRevocation{}
	}
	now := time.Now()
	for k, held := range m.revokedSubjects {
		if held.Expires.Before(now) {
			delete(m.revokedSubjects, k)
		}
	}
	if held, ok := m.revokedSubjects[s]; ok {
		r = held.merge(r)
	}
	m.revokedSubjects[s] = r
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
	subjects := maps.Clone(m.revokedSubjects)
	if subjects == nil {
		subjects = map[RevokedSubject]SubjectRevocation{}
	}
	return RevocationList{Version: m.revVersion, Changed: true, IDs: ids, Subjects: subjects}, nil
}

var (
	revocationsBucket = []byte("revocations")
	metaBucket        = []byte("meta")
	revVersionKey     = []byte("revocations_version")
	// subjectsBucket holds subject revocations: RevokedSubject.key() →
	// cutoff and expiry, Unix ns, 8 bytes each. It is made by the first
	// subject revocation, so that a file written before it existed opens
	// as it is.
	subjectsBucket = []byte("revoked_subjects")
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

// RevokeSubject implements [Revocations]: the revocation is durable when
// it returns.
func (b *Bolt) RevokeSubject(ctx context.Context, s RevokedSubject, r SubjectRevocation) error {
	if err := s.check(r); err != nil {
		return err
	}
	now := time.Now()
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk, err := tx.CreateBucketIfNotExists(subjectsBucket)
		if err != nil {
			return err
		}
		var stale [][]byte
		err = bk.ForEach(func(k, v []byte) error {
			if held, ok := decodeSubjectRevocation(v); ok && held.Expires.Before(now) {
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
		key := []byte(s.key())
		if v := bk.Get(key); v != nil {
			held, ok := decodeSubjectRevocation(v)
			if !ok {
				return fmt.Errorf("corrupt revocation of subject %s", key)
			}
			r = held.merge(r)
		}
		if err := bk.Put(key, encodeSubjectRevocation(r)); err != nil {
			return err
		}
		return tx.Bucket(metaBucket).Put(revVersionKey, []byte(newVersion()))
	})
	if err != nil {
		return fmt.Errorf("state: revoke subject: %w", err)
	}
	return nil
}

func encodeSubjectRevocation(r SubjectRevocation) []byte {
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v, uint64(r.IssuedBefore.UnixNano()))
	binary.BigEndian.PutUint64(v[8:], uint64(r.Expires.UnixNano()))
	return v
}

func decodeSubjectRevocation(v []byte) (SubjectRevocation, bool) {
	if len(v) != 16 {
		return SubjectRevocation{}, false
	}
	return SubjectRevocation{
		IssuedBefore: time.Unix(0, int64(binary.BigEndian.Uint64(v))),
		Expires:      time.Unix(0, int64(binary.BigEndian.Uint64(v[8:]))),
	}, true
}

// Revoked implements [Revocations].
func (b *Bolt) Revoked(ctx context.Context, since string) (RevocationList, error) {
	var list RevocationList
	err := b.db.View(func(tx *bolt.Tx) error {
		list.Version = string(tx.Bucket(metaBucket).Get(revVersionKey))
		if list.Version == since {
			return nil
		}
		list.Changed, list.IDs, list.Subjects = true, map[string]time.Time{}, map[RevokedSubject]SubjectRevocation{}
		err := tx.Bucket(revocationsBucket).ForEach(func(k, v []byte) error {
			if len(v) != 8 {
				return fmt.Errorf("corrupt revocation of %q", k)
			}
			list.IDs[string(k)] = time.Unix(0, int64(binary.BigEndian.Uint64(v)))
			return nil
		})
		if err != nil {
			return err
		}
		bk := tx.Bucket(subjectsBucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			s, err := subjectFromKey(string(k))
			if err != nil {
				return err
			}
			r, ok := decodeSubjectRevocation(v)
			if !ok {
				return fmt.Errorf("corrupt revocation of subject %s", k)
			}
			list.Subjects[s] = r
			return nil
		})
	})
	if err != nil {
		return RevocationList{}, fmt.Errorf("state: revocations: %w", err)
	}
	return list, nil
}
