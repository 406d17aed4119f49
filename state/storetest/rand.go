package storetest

import "math/rand/v2"

// rnd is a seeded source of keys and values, so a failing sequence can be
// replayed from its seed.
type rnd struct{ r *rand.Rand }

func newRand(seed uint64) rnd { return rnd{rand.New(rand.NewPCG(seed, 0x5eed))} }

func (r rnd) n(n int) int { return r.r.IntN(n) }

// keyAlphabet favors the bytes where ordering and prefix bounds have edge
// cases: 0x00, 0xfe and 0xff.
var keyAlphabet = []byte{0x00, 0x01, 'a', 'b', 0x7f, 0x80, 0xfe, 0xff}

// key returns a key of up to maxLen bytes (possibly empty) over
// keyAlphabet, so that random operations collide on the same keys.
func (r rnd) key(maxLen int) string {
	b := make([]byte, r.n(maxLen+1))
	for i := range b {
		b[i] = keyAlphabet[r.n(len(keyAlphabet))]
	}
	return string(b)
}

// bound returns nil a quarter of the time, else a key.
func (r rnd) bound(maxLen int) []byte {
	if r.n(4) == 0 {
		return nil
	}
	return []byte(r.key(maxLen))
}

// value returns a value of up to 32 bytes, empty one time in eight.
func (r rnd) value() []byte {
	if r.n(8) == 0 {
		return []byte{}
	}
	b := make([]byte, 1+r.n(32))
	for i := range b {
		b[i] = byte(r.n(256))
	}
	return b
}
