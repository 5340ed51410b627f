package mongostore

// SetRosterLimit makes s refuse new roster items beyond n items instead of
// aoba.MaxRosterItems.
func SetRosterLimit(s *Store, n int64) { s.rosterLimit = n }
