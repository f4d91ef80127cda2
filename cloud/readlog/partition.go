package readlog

// PartitionFor returns the partition of n that key belongs to: the Kafka Java
// client's default placement, toPositive(murmur2(key)) % n, which franz-go's
// StickyKeyPartitioner(nil) also uses. The local log and a Kafka topic with
// the same partition count therefore place a device in the same partition.
// n must be positive; PartitionFor panics otherwise (a programming error).
func PartitionFor(key []byte, n int) int {
	if n <= 0 {
		panic("readlog: PartitionFor with a non-positive partition count")
	}
	return int(uint32(Murmur2(key))&0x7fffffff) % n
}

// Murmur2 is the 32-bit MurmurHash2 variant of the Kafka clients: seed
// 0x9747b28c, 4-byte little-endian blocks, the tail folded in as bytes, and
// the final avalanche. The result is the signed value the Java client
// returns.
func Murmur2(data []byte) int32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	n := len(data)
	h := uint32(seed) ^ uint32(n)
	blocks := n &^ 3
	for i := 0; i < blocks; i += 4 {
		k := uint32(data[i]) | uint32(data[i+1])<<8 | uint32(data[i+2])<<16 | uint32(data[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch n & 3 {
	case 3:
		h ^= uint32(data[blocks+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(data[blocks+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(data[blocks])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return int32(h)
}
