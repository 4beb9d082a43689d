package hub

import (
	"bytes"
	"context"
	"sync"
)

// Memory is a [Store] in process memory: for tests and throwaway runs,
// since nothing survives the process.
type Memory struct {
	store
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty store.
func NewMemory() *Memory {
	return &Memory{store{&memDocs{docs: map[kind]map[string][]byte{}, ver: newVersion()}}}
}

type memDocs struct {
	mu   sync.Mutex
	docs map[kind]map[string][]byte
	ver  string
}

func (m *memDocs) get(ctx context.Context, k kind, id string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.docs[k][id]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(b), nil
}

func (m *memDocs) all(ctx context.Context, k kind) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([][]byte, 0, len(m.docs[k]))
	for _, b := range m.docs[k] {
		out = append(out, bytes.Clone(b))
	}
	return out, nil
}

func (m *memDocs) create(ctx context.Context, ds []doc) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, d := range ds {
		if _, taken := m.docs[d.kind][d.id]; taken {
			return errTaken(d.kind, d.id)
		}
	}
	m.put(ds)
	if holdsGrant("", ds) {
		m.ver = newVersion()
	}
	return nil
}

// update runs change under the lock: no write can come in between, so
// change runs once.
func (m *memDocs) update(ctx context.Context, k kind, id string, change func([]byte) ([]byte, []doc, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.docs[k][id]
	if !ok {
		return ErrNotFound
	}
	body, created, err := change(bytes.Clone(cur))
	if err != nil {
		return err
	}
	for _, d := range created {
		if _, taken := m.docs[d.kind][d.id]; taken {
			return errTaken(d.kind, d.id)
		}
	}
	m.put(append(created, doc{kind: k, id: id, body: body}))
	if holdsGrant(k, created) {
		m.ver = newVersion()
	}
	return nil
}

func (m *memDocs) put(ds []doc) {
	for _, d := range ds {
		if m.docs[d.kind] == nil {
			m.docs[d.kind] = map[string][]byte{}
		}
		m.docs[d.kind][d.id] = bytes.Clone(d.body)
	}
}

func (m *memDocs) version(ctx context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.ver, nil
}
