package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/tributary-dev/tributary/internal/yamlerr"
)

// Encoding formats of Encode's output. Decode refuses formats it does not
// know, so a node that does not understand a bundle in the Raft log says so
// instead of guessing.
//
// Format 1 is the original. Format 2 adds key and header matches, retired and
// retired_rules. Encode writes format 1 for a bundle that uses none of them,
// byte for byte as before, so that nodes not yet upgraded keep reading such
// bundles during a rolling upgrade, and format 2 otherwise, which those nodes
// refuse by its number.
const (
	encodingFormat1 = 1
	encodingFormat  = 2
)

// Hash is the bundle's content hash for the audit trail: the lower-case hex
// sha256 of the lines "<file sha256>  <file base name>\n", sorted by base name,
// which is what `cd policies && LC_ALL=C sha256sum *.yaml | sha256sum` prints.
func (s *Set) Hash() string {
	lines := make([]string, len(s.Files))
	for i, f := range s.Files {
		lines[i] = f.SHA256 + "  " + filepath.Base(f.Name) + "\n"
	}
	sort.Slice(lines, func(i, j int) bool {
		return lines[i][66:] < lines[j][66:] || lines[i][66:] == lines[j][66:] && lines[i] < lines[j]
	})
	sum := sha256.Sum256([]byte(strings.Join(lines, "")))
	return hex.EncodeToString(sum[:])
}

// Encode serialises the Set deterministically: equal Sets give equal bytes, so
// the bytes can go into the Raft log and be compared or hashed. Decode reads
// them back, file positions included, so errors found later on another node
// still point at the file and line.
func (s *Set) Encode() []byte {
	dto := setDTO{Format: encodingFormat1, Files: s.Files, Policies: make([]policyDTO, len(s.Policies))}
	if dto.Files == nil {
		dto.Files = []File{}
	}
	for i, p := range s.Policies {
		dto.Policies[i] = toDTO(p, true)
		if len(p.RetiredRules) > 0 || slices.ContainsFunc(p.Rules, func(r Rule) bool { return r.Match.Key != "" || r.Match.Header != "" }) {
			dto.Format = encodingFormat
		}
	}
	for _, r := range s.Retired {
		dto.Retired = append(dto.Retired, retiredDTO{Name: r.Name, File: r.File, Path: r.path, Pos: [2]int{r.Line, r.Col}})
		dto.Format = encodingFormat
	}
	b, err := json.Marshal(dto)
	if err != nil {
		panic("policy: encoding a set: " + err.Error()) // only plain values: cannot happen
	}
	return b
}

// Decode reads a Set written by Encode and validates it again.
func Decode(data []byte) (*Set, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var dto setDTO
	if err := dec.Decode(&dto); err != nil {
		return nil, fmt.Errorf("decoding policy set: %w", err)
	}
	if end := dec.InputOffset(); !atEOF(dec) {
		return nil, fmt.Errorf("decoding policy set: data after the bundle's JSON object at byte %d", end)
	}
	if dto.Format != encodingFormat1 && dto.Format != encodingFormat {
		return nil, fmt.Errorf("decoding policy set: format %d, this node understands %d and %d", dto.Format, encodingFormat1, encodingFormat)
	}
	s := &Set{Files: dto.Files}
	for _, r := range dto.Retired {
		s.Retired = append(s.Retired, Retired{Name: r.Name, File: r.File, Line: r.Pos[0], Col: r.Pos[1], path: r.Path})
	}
	var errs []*Error
	for _, pd := range dto.Policies {
		p := fromDTO(pd)
		errs = append(errs, p.check()...)
		s.Policies = append(s.Policies, p)
	}
	errs = append(errs, s.validate()...)
	if err := yamlerr.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// atEOF reports whether dec holds nothing but white space any more.
func atEOF(dec *json.Decoder) bool {
	_, err := dec.Token()
	return errors.Is(err, io.EOF)
}

// digest hashes what a policy says, leaving out its version, file and
// positions, so that reformatting a file or adding comments is not a change.
func (p *Policy) digest() string {
	b, _ := json.Marshal(toDTO(p, false))
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

type setDTO struct {
	Format   int          `json:"format"`
	Files    []File       `json:"files"`
	Policies []policyDTO  `json:"policies"`
	Retired  []retiredDTO `json:"retired,omitempty"`
}

type retiredDTO struct {
	Name string `json:"name"`
	File string `json:"file"`
	Path string `json:"path"`
	Pos  [2]int `json:"pos"`
}

type policyDTO struct {
	Name           string            `json:"name"`
	Version        int64             `json:"version,omitempty"`
	Owner          string            `json:"owner,omitempty"`
	Description    string            `json:"description,omitempty"`
	Pipelines      []string          `json:"pipelines,omitempty"`
	Topics         []string          `json:"topics,omitempty"`
	Rules          []ruleDTO         `json:"rules"`
	RetiredRules   []matchDTO        `json:"retired_rules,omitempty"`
	OnUnmatchedPII string            `json:"on_unmatched_pii"`
	File           string            `json:"file,omitempty"`
	SHA256         string            `json:"sha256,omitempty"`
	Pos            map[string][2]int `json:"pos,omitempty"`
}

type matchDTO struct {
	Field  string `json:"field,omitempty"`
	Key    string `json:"key,omitempty"`
	Header string `json:"header,omitempty"`
	Tag    string `json:"tag,omitempty"`
}

type ruleDTO struct {
	Field       string     `json:"field,omitempty"`
	Tag         string     `json:"tag,omitempty"`
	Key         string     `json:"key,omitempty"`
	Header      string     `json:"header,omitempty"`
	Action      Action     `json:"action"`
	Description string     `json:"description,omitempty"`
	KeepFirst   int        `json:"keep_first,omitempty"`
	KeepLast    int        `json:"keep_last,omitempty"`
	MaskChar    string     `json:"mask_char,omitempty"`
	Precision   *int       `json:"precision,omitempty"`
	Truncate    string     `json:"truncate,omitempty"`
	Buckets     []rangeDTO `json:"buckets,omitempty"`
	Value       *scalarDTO `json:"value,omitempty"`
}

type rangeDTO struct {
	Min         *float64   `json:"min,omitempty"`
	Max         *float64   `json:"max,omitempty"`
	Replacement *scalarDTO `json:"replacement,omitempty"`
}

// scalarDTO keeps a scalar's type through JSON, where 2.0 and 2 look alike.
type scalarDTO struct {
	S *string  `json:"s,omitempty"`
	I *int64   `json:"i,omitempty"`
	F *float64 `json:"f,omitempty"`
	B *bool    `json:"b,omitempty"`
}

func toScalar(v any) *scalarDTO {
	switch v := v.(type) {
	case string:
		return &scalarDTO{S: &v}
	case int64:
		return &scalarDTO{I: &v}
	case float64:
		return &scalarDTO{F: &v}
	case bool:
		return &scalarDTO{B: &v}
	}
	return nil
}

func (s *scalarDTO) value() any {
	switch {
	case s == nil:
		return nil
	case s.S != nil:
		return *s.S
	case s.I != nil:
		return *s.I
	case s.F != nil:
		return *s.F
	case s.B != nil:
		return *s.B
	}
	return nil
}

func toDTO(p *Policy, full bool) policyDTO {
	d := policyDTO{
		Name: p.Name, Owner: p.Owner, Description: p.Description,
		Pipelines: p.AppliesTo.Pipelines, Topics: p.AppliesTo.Topics,
		OnUnmatchedPII: p.OnUnmatchedPII, Rules: make([]ruleDTO, len(p.Rules)),
	}
	if full {
		d.Version, d.File, d.SHA256 = p.Version, p.File, p.SHA256
		d.Pos = make(map[string][2]int, len(p.pos))
		for k, v := range p.pos {
			d.Pos[k] = [2]int{v.Line, v.Col}
		}
	}
	for i, r := range p.Rules {
		rd := ruleDTO{
			Field: r.Match.Field, Tag: r.Match.Tag, Key: r.Match.Key, Header: r.Match.Header,
			Action: r.Action, Description: r.Description,
			KeepFirst: r.KeepFirst, KeepLast: r.KeepLast, MaskChar: r.MaskChar,
			Precision: r.Precision, Truncate: r.Truncate, Value: toScalar(r.Value),
		}
		for _, b := range r.Buckets {
			rd.Buckets = append(rd.Buckets, rangeDTO{Min: b.Min, Max: b.Max, Replacement: toScalar(b.Replacement)})
		}
		d.Rules[i] = rd
	}
	for _, m := range p.RetiredRules {
		d.RetiredRules = append(d.RetiredRules, matchDTO(m))
	}
	return d
}

func fromDTO(d policyDTO) *Policy {
	p := &Policy{
		Name: d.Name, Version: d.Version, Owner: d.Owner, Description: d.Description,
		AppliesTo:      AppliesTo{Pipelines: d.Pipelines, Topics: d.Topics},
		OnUnmatchedPII: d.OnUnmatchedPII, File: d.File, SHA256: d.SHA256,
		pos: make(yamlerr.Positions, len(d.Pos)),
	}
	for k, v := range d.Pos {
		p.pos[k] = yamlerr.Pos{Line: v[0], Col: v[1]}
	}
	for _, rd := range d.Rules {
		r := Rule{
			Match:  Match{Field: rd.Field, Key: rd.Key, Header: rd.Header, Tag: rd.Tag},
			Action: rd.Action, Description: rd.Description,
			KeepFirst: rd.KeepFirst, KeepLast: rd.KeepLast, MaskChar: rd.MaskChar,
			Precision: rd.Precision, Truncate: rd.Truncate, Value: rd.Value.value(),
		}
		for _, b := range rd.Buckets {
			r.Buckets = append(r.Buckets, Range{Min: b.Min, Max: b.Max, Replacement: b.Replacement.value()})
		}
		p.Rules = append(p.Rules, r)
	}
	for _, m := range d.RetiredRules {
		p.RetiredRules = append(p.RetiredRules, Match(m))
	}
	return p
}
