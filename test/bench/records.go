package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// The records of every workload: key "PP:SSSSSSSSSSSS" (source partition,
// sequence number within it), three small headers, and a value that starts
// with the sequence number (bytes workloads; Avro values carry it in a
// field). Record i of a workload goes to partition i % partitions.
const keyLen = 15

// benchHeaders are the three small headers every record carries; the
// checker wants them back unchanged (replicators add their own, which it
// ignores).
var benchHeaders = []kafka.Header{
	{Key: "bench-origin", Value: []byte("eu-1")},
	{Key: "bench-trace", Value: []byte("0123456789abcdef")},
	{Key: "bench-kind", Value: []byte("order")},
}

// sentHeader carries the producer's send time (Unix nanoseconds, 8 bytes
// big-endian) in the latency scenario.
const sentHeader = "bench-sent"

// piiMarker starts every value of the four masked fields of the Avro
// workload: a target record that still contains it was not masked.
var piiMarker = []byte("pii-")

func recordKey(partition, seq int) []byte {
	return fmt.Appendf(make([]byte, 0, keyLen), "%02d:%012d", partition, seq)
}

func parseKey(k []byte) (partition, seq int, err error) {
	if len(k) != keyLen || k[2] != ':' {
		return 0, 0, fmt.Errorf("key %q is not a benchmark key (PP:SSSSSSSSSSSS)", k)
	}
	p, err1 := strconv.Atoi(string(k[:2]))
	s, err2 := strconv.Atoi(string(k[3:]))
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("key %q is not a benchmark key (PP:SSSSSSSSSSSS)", k)
	}
	return p, s, nil
}

// bytesValue is the value of record seq of a bytes workload: size bytes,
// the sequence number first.
func bytesValue(seq, size int, filler []byte) []byte {
	v := make([]byte, size)
	copy(v[8:], filler)
	binary.BigEndian.PutUint64(v, uint64(seq))
	return v
}

// partitionCounts is how many records of n each of parts partitions holds.
func partitionCounts(n, parts int) []int {
	c := make([]int, parts)
	for p := range c {
		c[p] = n / parts
		if p < n%parts {
			c[p]++
		}
	}
	return c
}

// valueCheck is what the checker verifies of a value besides the key.
type valueCheck int

const (
	checkBytes  valueCheck = iota // exactly valueSize bytes, starting with the sequence number
	checkMasked                   // Avro wire format, none of the masked fields' raw values left
	checkAny                      // nothing (latency records)
)

// checker verifies what a replicator wrote to the target: every record of
// every partition exactly once and in order (the sequence in each key runs
// 0, 1, 2, ... in its partition), the headers unchanged, the value as
// valueCheck says. The first violation is kept and every later record is
// ignored: a run that fails the check is not a measurement.
type checker struct {
	want      []int // records per partition; nil until known
	next      []int
	total     int
	check     valueCheck
	valueSize int
	err       error
}

func newChecker(parts int, check valueCheck, valueSize int) *checker {
	return &checker{next: make([]int, parts), check: check, valueSize: valueSize}
}

// expect sets how many records each partition must end up with.
func (c *checker) expect(want []int) { c.want = want }

// record checks one target record of partition.
func (c *checker) record(partition int32, key, value []byte, headers []kafka.Header) error {
	if c.err != nil {
		return c.err
	}
	c.err = c.verify(partition, key, value, headers)
	return c.err
}

func (c *checker) verify(partition int32, key, value []byte, headers []kafka.Header) error {
	if partition < 0 || int(partition) >= len(c.next) {
		return fmt.Errorf("record in partition %d: the topic should have %d partitions", partition, len(c.next))
	}
	p, seq, err := parseKey(key)
	if err != nil {
		return fmt.Errorf("partition %d, record %d: %w", partition, c.next[partition], err)
	}
	if p != int(partition) {
		return fmt.Errorf("partition %d: record %q belongs to partition %d", partition, key, p)
	}
	want := c.next[partition]
	switch {
	case seq < want:
		return fmt.Errorf("partition %d: record %d again after %d (duplicate)", partition, seq, want-1)
	case seq > want:
		return fmt.Errorf("partition %d: record %d after %d (records %d..%d missing or out of order)", partition, seq, want-1, want, seq-1)
	}
	if c.want != nil && seq >= c.want[partition] {
		return fmt.Errorf("partition %d: record %d beyond the %d written to the source", partition, seq, c.want[partition])
	}
	for _, h := range benchHeaders {
		if v, ok := header(headers, h.Key); !ok || !bytes.Equal(v, h.Value) {
			return fmt.Errorf("partition %d, record %d: header %s is %q (present: %v), want %q", partition, seq, h.Key, v, ok, h.Value)
		}
	}
	switch c.check {
	case checkBytes:
		if len(value) != c.valueSize {
			return fmt.Errorf("partition %d, record %d: value of %d bytes, want %d", partition, seq, len(value), c.valueSize)
		}
		if got := binary.BigEndian.Uint64(value); got != uint64(seq) {
			return fmt.Errorf("partition %d, record %d: value carries sequence %d", partition, seq, got)
		}
	case checkMasked:
		if len(value) < 6 || value[0] != 0 {
			return fmt.Errorf("partition %d, record %d: value is not in the Confluent wire format", partition, seq)
		}
		if bytes.Contains(value, piiMarker) {
			return fmt.Errorf("partition %d, record %d: a masked field landed unmasked", partition, seq)
		}
	}
	c.next[partition]++
	c.total++
	return nil
}

// complete reports whether every partition holds all its records.
func (c *checker) complete() bool {
	if c.want == nil || c.err != nil {
		return false
	}
	for p, w := range c.want {
		if c.next[p] < w {
			return false
		}
	}
	return true
}

// missing describes what has not arrived, for a timeout.
func (c *checker) missing() string {
	if c.want == nil {
		return fmt.Sprintf("%d records seen, expected count not known yet", c.total)
	}
	want := 0
	var short []string
	for p, w := range c.want {
		want += w
		if c.next[p] < w {
			short = append(short, fmt.Sprintf("p%d %d/%d", p, c.next[p], w))
		}
	}
	return fmt.Sprintf("%d of %d records arrived; short: %v", c.total, want, short)
}

func header(hs []kafka.Header, key string) ([]byte, bool) {
	for _, h := range hs {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

var errTimeout = errors.New("timed out")
