package policy

import (
	"encoding/binary"
	"encoding/hex"
	"hash"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// This file holds the value transformations the actions share between Avro and
// JSON. None of them returns or logs the input.

// maskedLen is the byte length of s masked by r (see appendMasked).
func maskedLen(s []byte, r *Rule) int {
	n := utf8.RuneCount(s)
	first, last := keepCounts(n, r)
	head := runePrefixLen(s, first)
	tail := runeSuffixLen(s, last)
	return head + tail + (n-first-last)*len(r.maskChar())
}

// keepCounts returns how many runes stay visible at each end of a string of n
// runes. When the kept parts would cover the whole value, nothing stays
// visible: a mask rule never passes a short value through whole.
func keepCounts(n int, r *Rule) (first, last int) {
	if r.KeepFirst+r.KeepLast >= n {
		return 0, 0
	}
	return r.KeepFirst, r.KeepLast
}

func runePrefixLen(s []byte, runes int) int {
	i := 0
	for ; runes > 0 && i < len(s); runes-- {
		_, size := utf8.DecodeRune(s[i:])
		i += size
	}
	return i
}

func runeSuffixLen(s []byte, runes int) int {
	i := len(s)
	for ; runes > 0 && i > 0; runes-- {
		_, size := utf8.DecodeLastRune(s[:i])
		i -= size
	}
	return len(s) - i
}

// appendMasked appends s with every rune but the first KeepFirst and last
// KeepLast replaced by the mask character.
func appendMasked(dst, s []byte, r *Rule) []byte {
	n := utf8.RuneCount(s)
	first, last := keepCounts(n, r)
	head := runePrefixLen(s, first)
	tail := runeSuffixLen(s, last)
	dst = append(dst, s[:head]...)
	mc := r.maskChar()
	for range n - first - last {
		dst = append(dst, mc...)
	}
	return append(dst, s[len(s)-tail:]...)
}

// appendMaskedBytes masks bytes values byte by byte (the mask character is ASCII).
func appendMaskedBytes(dst, s []byte, r *Rule) []byte {
	first, last := r.KeepFirst, r.KeepLast
	if first+last >= len(s) {
		first, last = 0, 0
	}
	dst = append(dst, s[:first]...)
	mc := r.maskChar()[0]
	for range len(s) - first - last {
		dst = append(dst, mc)
	}
	return append(dst, s[len(s)-last:]...)
}

// sum computes HMAC-SHA256(key, data) with the plan's key.
func (p *Plan) sum(data []byte) [32]byte { return hmacSum(p.hmacs, data) }

// hmacSum computes HMAC-SHA256(key, data) with a pooled HMAC of the key.
func hmacSum(pool *sync.Pool, data []byte) [32]byte {
	h := pool.Get().(hash.Hash)
	h.Reset()
	h.Write(data)
	var out [32]byte
	h.Sum(out[:0])
	pool.Put(h)
	return out
}

// appendHMAC appends HMAC-SHA256(key, data), 32 bytes, to dst with a pooled
// HMAC of the key.
func appendHMAC(pool *sync.Pool, dst, data []byte) []byte {
	h := pool.Get().(hash.Hash)
	h.Reset()
	h.Write(data)
	dst = h.Sum(dst)
	pool.Put(h)
	return dst
}

// appendHashHex appends the lower-case hex HMAC of data: 64 characters.
func (p *Plan) appendHashHex(dst, data []byte) []byte { return appendHMACHex(p.hmacs, dst, data) }

// appendHMACHex appends the lower-case hex HMAC of data: 64 characters. A
// string field, a key without a schema and a header value holding the same
// bytes get the same pseudonym, so they join.
func appendHMACHex(pool *sync.Pool, dst, data []byte) []byte {
	s := hmacSum(pool, data)
	return hex.AppendEncode(dst, s[:])
}

// appendHashUUID appends a pseudonym shaped as a UUID (RFC 9562 version 8),
// for strings with the uuid logical type or format.
func (p *Plan) appendHashUUID(dst, data []byte) []byte {
	s := p.sum(data)
	s[6] = s[6]&0x0f | 0x80
	s[8] = s[8]&0x3f | 0x80
	return appendUUID(dst, s[:16])
}

func appendUUID(dst, b []byte) []byte {
	dst = hex.AppendEncode(dst, b[0:4])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[4:6])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[6:8])
	dst = append(dst, '-')
	dst = hex.AppendEncode(dst, b[8:10])
	dst = append(dst, '-')
	return hex.AppendEncode(dst, b[10:16])
}

const zeroUUID = "00000000-0000-0000-0000-000000000000"

// hashN returns n bytes of pseudonym for data: the HMAC, extended for n > 32
// by HMAC(key, data || counter).
func (p *Plan) hashN(data []byte, n int) []byte {
	out := make([]byte, 0, n+32)
	s := p.sum(data)
	out = append(out, s[:]...)
	for ctr := uint32(1); len(out) < n; ctr++ {
		h := p.hmac()
		h.Write(data)
		var c [4]byte
		binary.BigEndian.PutUint32(c[:], ctr)
		h.Write(c[:])
		out = h.Sum(out)
		p.hmacs.Put(h)
	}
	return out[:n]
}

// roundTo rounds x to prec decimal places (negative: to tens, hundreds...).
func roundTo(x float64, prec int) float64 {
	if math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	if prec >= 0 {
		m := math.Pow(10, float64(prec))
		r := math.Round(x*m) / m
		if math.IsInf(r, 0) || math.IsNaN(r) {
			return x
		}
		// Print-and-parse drops binary noise such as 52.520000000000003.
		f, _ := strconv.ParseFloat(strconv.FormatFloat(r, 'f', prec, 64), 64)
		return f
	}
	m := math.Pow(10, float64(-prec))
	return math.Round(x/m) * m
}

// roundInt rounds x to a multiple of 10^-prec (half away from zero), saturating
// at lo and hi; prec >= 0 leaves integers as they are.
func roundInt(x int64, prec int, lo, hi int64) int64 {
	if prec >= 0 {
		return x
	}
	m := int64(1)
	for range -prec {
		if m > math.MaxInt64/10 {
			return 0
		}
		m *= 10
	}
	q, r := x/m, x%m
	if r >= (m+1)/2 {
		q++
	} else if -r >= (m+1)/2 {
		q--
	}
	if q > hi/m {
		return hi / m * m
	}
	if q < lo/m {
		return lo / m * m
	}
	return q * m
}

// truncTime truncates t in its own location.
func truncTime(t time.Time, unit string) time.Time {
	y, mo, d := t.Date()
	switch unit {
	case "hour":
		return time.Date(y, mo, d, t.Hour(), 0, 0, 0, t.Location())
	case "day":
		return time.Date(y, mo, d, 0, 0, 0, 0, t.Location())
	case "month":
		return time.Date(y, mo, 1, 0, 0, 0, 0, t.Location())
	case "year":
		return time.Date(y, 1, 1, 0, 0, 0, 0, t.Location())
	}
	return t
}

// truncLogical truncates a number holding an Avro timestamp, date or time.
func truncLogical(v int64, logical, unit string) int64 {
	switch logical {
	case "timestamp-millis", "local-timestamp-millis":
		return truncTime(time.UnixMilli(v).UTC(), unit).UnixMilli()
	case "timestamp-micros", "local-timestamp-micros":
		return truncTime(time.UnixMicro(v).UTC(), unit).UnixMicro()
	case "date":
		t := time.Unix(v*86400, 0).UTC()
		return truncTime(t, unit).Unix() / 86400
	case "time-millis":
		if unit == "hour" {
			return v - v%3_600_000
		}
		return 0
	case "time-micros":
		if unit == "hour" {
			return v - v%3_600_000_000
		}
		return 0
	}
	return v
}

// truncString truncates an RFC 3339 timestamp or a date (2006-01-02) written
// as a string, keeping its offset. ok is false for anything else.
func truncString(s, unit string) (string, bool) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return truncTime(t, unit).Format(time.RFC3339), true
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil && unit != "hour" {
		return truncTime(t, unit).Format(time.DateOnly), true
	}
	return "", false
}

// bucketOf returns the replacement of the bucket x falls in.
func bucketOf(x float64, bs []Range) (any, bool) {
	for _, b := range bs {
		if (b.Min == nil || x >= *b.Min) && (b.Max == nil || x < *b.Max) {
			return b.Replacement, true
		}
	}
	return nil, false
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case float64:
		return x
	}
	return 0
}
