package seriesblock

import (
	"fmt"
	"math"
	"math/bits"
)

// maxScale is the largest decimal scale tried: values with up to nine
// decimal digits are stored as scaled integers.
const maxScale = 9

// maxScaled bounds a scaled integer so that float64(m) is exact.
const maxScaled = 1 << 53

var pow10 = [maxScale + 1]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// Value codes (prefix bits):
//
//	0                      same bits as the previous value
//	10  bucket(zz(Δm))     decimal: m = previous m + Δm, value = m / 10^scale
//	110 XOR                Gorilla XOR with the previous value's bits
//	111 scale:4 bucket(zz(m))  switch to a decimal scale, value = m / 10^scale
//
// XOR: 0 + the meaningful bits in the previous window, or 1 + leading
// zeros (6 bits) + meaningful bits − 1 (6 bits) + the meaningful bits.
// Before the first value the previous bits are 0 (+0.0), no scale is set
// and no XOR window exists.
type valueState struct {
	bits  uint64 // previous value
	m     int64  // previous decimal-coded value, scaled
	scale uint8  // current decimal scale + 1; 0: none yet
	lead  uint8  // XOR window: leading zeros
	sig   uint8  // XOR window: meaningful bits; 0: no window yet
}

// scaled reports whether f (bits v) is exactly m / 10^d.
func scaled(f float64, v uint64, d int) (int64, bool, bool) {
	x := f * pow10[d]
	if !(math.Abs(x) < maxScaled) { // also false for NaN and ±Inf
		return 0, false, true
	}
	m := int64(math.Round(x))
	if m >= maxScaled || m <= -maxScaled {
		return 0, false, true
	}
	return m, math.Float64bits(float64(m)/pow10[d]) == v, false
}

func (s *valueState) encode(w *bitWriter, v uint64) {
	if v == s.bits {
		w.writeBit(false)
		return
	}
	f := math.Float64frombits(v)
	if s.scale > 0 {
		if m, ok, _ := scaled(f, v, int(s.scale)-1); ok {
			w.writeBits(0b10, 2)
			valueBuckets.write(w, zigzag(m-s.m))
			s.m, s.bits = m, v
			return
		}
	}
	// A value exact at scale d is exact at every larger scale, so only
	// scales above the current one can newly fit.
	for d := int(s.scale); d <= maxScale; d++ {
		m, ok, tooBig := scaled(f, v, d)
		if tooBig {
			break
		}
		if ok {
			w.writeBits(0b111, 3)
			w.writeBits(uint64(d), 4)
			valueBuckets.write(w, zigzag(m))
			s.scale, s.m, s.bits = uint8(d+1), m, v
			return
		}
	}
	w.writeBits(0b110, 3)
	x := v ^ s.bits
	lead, trail := uint8(bits.LeadingZeros64(x)), uint8(bits.TrailingZeros64(x))
	if s.sig > 0 && lead >= s.lead && trail >= 64-s.lead-s.sig {
		w.writeBit(false)
		w.writeBits(x>>(64-s.lead-s.sig), uint(s.sig))
	} else {
		sig := 64 - lead - trail
		w.writeBit(true)
		w.writeBits(uint64(lead), 6)
		w.writeBits(uint64(sig-1), 6)
		w.writeBits(x>>trail, uint(sig))
		s.lead, s.sig = lead, sig
	}
	s.bits = v
}

func (s *valueState) decode(r *bitReader) (uint64, error) {
	b, err := r.readBit()
	if err != nil || !b {
		return s.bits, err
	}
	if b, err = r.readBit(); err != nil {
		return 0, err
	}
	if !b { // 10: decimal delta
		if s.scale == 0 {
			return 0, fmt.Errorf("%w: value column: decimal delta before any scale", ErrCorrupt)
		}
		z, err := valueBuckets.read(r)
		if err != nil {
			return 0, err
		}
		return s.setScaled(s.m + unzigzag(z))
	}
	if b, err = r.readBit(); err != nil {
		return 0, err
	}
	if b { // 111: scale change
		d, err := r.readBits(4)
		if err != nil {
			return 0, err
		}
		if d > maxScale {
			return 0, fmt.Errorf("%w: value column: decimal scale %d", ErrCorrupt, d)
		}
		z, err := valueBuckets.read(r)
		if err != nil {
			return 0, err
		}
		s.scale = uint8(d) + 1
		return s.setScaled(unzigzag(z))
	}
	// 110: XOR
	if b, err = r.readBit(); err != nil {
		return 0, err
	}
	if b {
		hdr, err := r.readBits(12)
		if err != nil {
			return 0, err
		}
		lead, sig := uint8(hdr>>6), uint8(hdr&63)+1
		if int(lead)+int(sig) > 64 {
			return 0, fmt.Errorf("%w: value column: XOR window %d+%d bits", ErrCorrupt, lead, sig)
		}
		s.lead, s.sig = lead, sig
	} else if s.sig == 0 {
		return 0, fmt.Errorf("%w: value column: XOR window reused before one was set", ErrCorrupt)
	}
	x, err := r.readBits(uint(s.sig))
	if err != nil {
		return 0, err
	}
	s.bits ^= x << (64 - s.lead - s.sig)
	return s.bits, nil
}

func (s *valueState) setScaled(m int64) (uint64, error) {
	if m <= -maxScaled || m >= maxScaled {
		return 0, fmt.Errorf("%w: value column: scaled value %d out of range", ErrCorrupt, m)
	}
	s.m = m
	s.bits = math.Float64bits(float64(m) / pow10[s.scale-1])
	return s.bits, nil
}
