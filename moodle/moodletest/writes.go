package moodletest

// Writes returns how many requests the site received for functions that
// change it (core_group_create_groups, core_group_delete_group_members,
// enrol_manual_enrol_users, ...), whatever became of them: what a guard
// must keep at zero when it refuses.
func (s *Site) Writes() int {
	s.cfg.mu.Lock()
	defer s.cfg.mu.Unlock()
	n := 0
	for name, calls := range s.cfg.calls {
		if fn := functions[name]; fn != nil && fn.write {
			n += calls
		}
	}
	return n
}
