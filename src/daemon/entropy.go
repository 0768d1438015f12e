package daemon

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// entropy reads the kernel's random pool with getrandom(2), blocking until it
// is initialised. crypto/rand does the same but links its FIPS generator:
// about 40 KB of flash and a 32 MiB reserved array in the daemon's virtual
// size, which a user of a 64 MB router sees in top.
type entropy struct{}

func (entropy) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := unix.Getrandom(b[n:], 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("getrandom: %w", err)
		}
		n += k
	}
	return n, nil
}
