package policy

// Data is the data document the set's policies see under data: the JSON
// and YAML files of its directory or bundle, merged as they were when the
// set was compiled, so it always belongs to the same revision as the
// rules. Callers must not change it. A nil Set has none.
func (s *Set) Data() map[string]any {
	if s == nil {
		return nil
	}
	return s.data
}
