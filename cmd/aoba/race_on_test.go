//go:build race

package main_test

// raceDetector reports whether the tests run with -race, which makes the
// embedded FerretDB of internal/mongotest (in the test process) several
// times slower: load tests size themselves down.
const raceDetector = true
