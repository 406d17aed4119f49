package runtime

import (
	"fmt"
	"testing"
)

// javaMurmur2 is Kafka's Utils.murmur2, transcribed from the Java client.
func javaMurmur2(data []byte) uint32 {
	const seed, m, r = uint32(0x9747b28c), uint32(0x5bd1e995), 24
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

// PartitionOf is the Java producer's key partitioning:
// toPositive(murmur2(key)) % partitions.
func TestPartitionOfMatchesJavaProducer(t *testing.T) {
	for i := range 1000 {
		k := fmt.Appendf(nil, "key-%d", i)
		for _, n := range []int32{1, 2, 3, 7, 12} {
			want := int32(javaMurmur2(k)&0x7fffffff) % n
			if got := PartitionOf(k, n); got != want {
				t.Fatalf("PartitionOf(%s, %d) = %d, Java gives %d", k, n, got, want)
			}
		}
	}
}
