package daemon

import (
	"strings"
	"testing"
	"time"
)

// C bug 16: timers compared wall-clock seconds, so an NTP step on a router
// without RTC expired every block and lease. Our clock must be read from the
// monotonic reading of its start (time.Now carries one; a wall time parsed or
// rounded does not), and a start without one would make every duration move
// with the wall clock.
func TestClockIsMonotonic(t *testing.T) {
	c := newClock()
	if !strings.Contains(c.start.String(), " m=") {
		t.Fatalf("clock start %v has no monotonic reading", c.start)
	}
	// A wall-only start (what a stored or parsed time gives) is what the C
	// node effectively used; it must differ from ours in exactly that.
	if wall := c.start.Round(0); strings.Contains(wall.String(), " m=") {
		t.Fatal("test premise: Round(0) should strip the monotonic reading")
	}
	a := c.now()
	time.Sleep(time.Millisecond)
	if b := c.now(); b <= a {
		t.Errorf("clock did not advance: %v then %v", a, b)
	}
}
