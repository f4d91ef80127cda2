// Package seriesblock is the block codec for the raw readings of one series
// (device, channel, quantity): a block holds up to MaxPoints readings
// (Points) as separately encoded columns, typically a few bytes per reading
// where one key per reading costs tens.
//
// An Encoder appends points in arrival order (times may go backwards);
// Bytes gives a complete block at any moment, so a partially filled block
// can be persisted after every commit, and Resume continues it later with
// exactly the bytes a single Encoder would have produced. Decode reads a
// block back bit-exactly, in append order; ReadInfo reads only the header
// (count and time range) so a reader can skip blocks outside a query.
//
// Columns (docs/storage.md has the byte-level format):
//   - time and seq: delta-of-delta, zig-zagged, in variable-width bit
//     buckets (one bit per point at a regular cadence), wrapping arithmetic
//     so every int64/uint64 sequence round-trips, including wraparound;
//   - value: a repeat bit, decimal-scaled integer deltas when the values are
//     exact decimals (most meter readings are), otherwise Gorilla XOR with
//     leading/trailing-zero windows; every float64 bit pattern round-trips;
//   - epoch, quality, time error and receive time: run-length encoded.
//
// Guarantees:
//   - Decode(e.Bytes()) yields the appended points with identical bits.
//   - Corrupt or truncated input gives an error wrapping ErrCorrupt (or
//     ErrVersion for an unknown format version), never a panic; a reader
//     allocates at most a small multiple of the block's size.
//   - Memory: an Encoder holds FixedBytes of state plus its column buffers,
//     at most twice the encoded size plus 56 bytes; SizeBytes reports it.
//
// A block carries no checksum: the store that keeps it checksums its pages.
package seriesblock
