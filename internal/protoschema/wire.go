package protoschema

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// This file holds the few protobuf wire-format primitives the descriptor
// decoder and encoder need. It is a hand-written reader on purpose: the
// package stays standard-library only, so package policy can use it.

var errTruncated = errors.New("truncated data")

// reader reads protobuf wire format from b.
type reader struct {
	b   []byte
	pos int
}

func (r *reader) done() bool { return r.pos >= len(r.b) }

func (r *reader) varint() (uint64, error) {
	var v uint64
	for s := uint(0); s < 70; s += 7 {
		if r.pos >= len(r.b) {
			return 0, errTruncated
		}
		c := r.b[r.pos]
		r.pos++
		if s == 63 && c > 1 {
			return 0, errors.New("varint overflows 64 bits")
		}
		v |= uint64(c&0x7f) << s
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, errors.New("varint longer than 10 bytes")
}

// tag reads a field key: the field number and the wire type.
func (r *reader) tag() (int32, int, error) {
	v, err := r.varint()
	if err != nil {
		return 0, 0, err
	}
	num, wt := v>>3, int(v&7)
	if num < 1 || num > maxFieldNumber {
		return 0, 0, fmt.Errorf("invalid field number %d", num)
	}
	return int32(num), wt, nil
}

// bytes reads a length-delimited value.
func (r *reader) bytes() ([]byte, error) {
	n, err := r.varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)-r.pos) {
		return nil, errTruncated
	}
	b := r.b[r.pos : r.pos+int(n)]
	r.pos += int(n)
	return b, nil
}

func (r *reader) fixed(n int) ([]byte, error) {
	if n > len(r.b)-r.pos {
		return nil, errTruncated
	}
	b := r.b[r.pos : r.pos+n]
	r.pos += n
	return b, nil
}

// skip reads past a value of wire type wt of field num, returning its bytes
// (for groups, up to and without the end-group key). depth bounds group
// nesting.
func (r *reader) skip(num int32, wt int, depth int) ([]byte, error) {
	start := r.pos
	switch wt {
	case 0:
		_, err := r.varint()
		return r.b[start:r.pos], err
	case 1:
		return r.fixed(8)
	case 2:
		return r.bytes()
	case 5:
		return r.fixed(4)
	case 3:
		if depth <= 0 {
			return nil, errors.New("groups nested too deep")
		}
		for {
			n, w, err := r.tag()
			if err != nil {
				return nil, err
			}
			if w == 4 {
				if n != num {
					return nil, fmt.Errorf("end of group %d closes group %d", n, num)
				}
				return r.b[start:r.pos], nil
			}
			if _, err := r.skip(n, w, depth-1); err != nil {
				return nil, err
			}
		}
	}
	return nil, fmt.Errorf("invalid wire type %d", wt)
}

// maxFieldNumber is the largest field number protobuf allows (2^29 - 1).
const maxFieldNumber = 1<<29 - 1

func appendVarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendTag(b []byte, num int32, wt int) []byte {
	return appendVarint(b, uint64(num)<<3|uint64(wt))
}

func appendBytesField(b []byte, num int32, v []byte) []byte {
	b = appendTag(b, num, 2)
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendStringField(b []byte, num int32, s string) []byte {
	b = appendTag(b, num, 2)
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendVarintField(b []byte, num int32, v uint64) []byte {
	b = appendTag(b, num, 0)
	return appendVarint(b, v)
}
