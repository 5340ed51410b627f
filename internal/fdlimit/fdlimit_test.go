package fdlimit_test

import (
	"runtime"
	"testing"

	"github.com/aoba-chat/aoba/internal/fdlimit"
)

// TestRaise lowers the soft limit below the hard one, as a shell's
// `ulimit -Sn` would, and proves that Raise takes it back to the hard limit
// and reports what is in force.
func TestRaise(t *testing.T) {
	if runtime.GOOS != "linux" {
		if _, err := fdlimit.Raise(); err != fdlimit.ErrUnsupported {
			t.Fatalf("Raise on %s = %v, want ErrUnsupported", runtime.GOOS, err)
		}
		return
	}
	orig, err := fdlimit.Get()
	if err != nil {
		t.Fatal(err)
	}
	if orig.Hard < 2 {
		t.Skipf("hard limit %d leaves no room to lower the soft one", orig.Hard)
	}
	t.Cleanup(func() { _ = fdlimit.Set(orig) })
	if err := fdlimit.Set(fdlimit.Limit{Soft: orig.Hard - 1, Hard: orig.Hard}); err != nil {
		t.Fatal(err)
	}
	if l, _ := fdlimit.Get(); l.Soft != orig.Hard-1 {
		t.Fatalf("soft limit = %d after lowering it, want %d", l.Soft, orig.Hard-1)
	}
	got, err := fdlimit.Raise()
	if err != nil {
		t.Fatal(err)
	}
	now, err := fdlimit.Get()
	if err != nil {
		t.Fatal(err)
	}
	if got != now || now.Soft != orig.Hard || now.Hard != orig.Hard {
		t.Fatalf("Raise = %+v, in force %+v, want soft = hard = %d", got, now, orig.Hard)
	}
}
