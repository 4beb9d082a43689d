package state

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Memory is a ledger, answer cache and revocation list in process
// memory: for tests and throwaway runs, since nothing survives the
// process.
type Memory struct {
	mu       sync.Mutex
	accounts map[accountKey]amount
	charges  map[string]chargeRecord
	answers  map[string][]byte
	// revoked maps revoked token ids to their expiry, revokedSubjects
	// the subjects whose tokens are revoked; revVersion is the revocation
	// list's version.
	revoked         map[string]time.Time
	revokedSubjects map[RevokedSubject]SubjectRevocation
	revVersion      string
}

type accountKey struct{ scope, key string }

var (
	_ Ledger = (*Memory)(nil)
	_ Cache  = (*Memory)(nil)
)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{accounts: map[accountKey]amount{}, charges: map[string]chargeRecord{}, answers: map[string][]byte{}}
}

// Ping always succeeds: memory is always reachable.
func (m *Memory) Ping(ctx context.Context) error { return nil }

// Charge implements [Ledger].
func (m *Memory) Charge(ctx context.Context, c Charge) (Receipt, error) {
	p, err := c.plan()
	if err != nil {
		return Receipt{}, err
	}
	if err := ctx.Err(); err != nil {
		return Receipt{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.charges[c.RequestID]; ok {
		return r.replay(p)
	}
	spent := make([]amount, len(p.keys))
	for i, k := range p.keys {
		spent[i] = m.accounts[accountKey{p.scope, k}]
	}
	after, err := p.apply(spent)
	if err != nil {
		return Receipt{}, err
	}
	for i, k := range p.keys {
		m.accounts[accountKey{p.scope, k}] = after[i]
	}
	m.charges[c.RequestID] = p.record(after)
	return Receipt{Spent: budgets(after)}, nil
}

// Spent implements [Ledger].
func (m *Memory) Spent(ctx context.Context, scope string, keys ...string) ([]Budget, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Budget, len(keys))
	for i, k := range keys {
		out[i] = m.accounts[accountKey{scope, k}].budget()
	}
	return out, nil
}

// Answer implements [Cache].
func (m *Memory) Answer(ctx context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.answers[key]
	return slices.Clone(a), ok, nil
}

// StoreAnswer implements [Cache].
func (m *Memory) StoreAnswer(ctx context.Context, key string, answer []byte) ([]byte, error) {
	if key == "" || len(answer) == 0 {
		return nil, errEmptyAnswer
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if a, ok := m.answers[key]; ok {
		return slices.Clone(a), nil
	}
	m.answers[key] = slices.Clone(answer)
	return slices.Clone(answer), nil
}
