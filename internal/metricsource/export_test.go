package metricsource

// Windows returns how many windows the source remembers, and for how many
// backends.
func (s *Builtin) Windows() (windows, backends int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.windows), len(s.byBackend)
}
