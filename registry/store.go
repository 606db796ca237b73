package registry

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Mode is a registry or subject mode.
type Mode string

// Modes. ReadOnly rejects registrations and deletions; Import accepts
// registrations with caller-given ids and versions and skips compatibility
// checks, so another registry's contents can be copied with their ids.
const (
	ReadWrite Mode = "READWRITE"
	ReadOnly  Mode = "READONLY"
	Import    Mode = "IMPORT"
)

// ParseMode parses a mode, ignoring case.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToUpper(strings.TrimSpace(s))); m {
	case ReadWrite, ReadOnly, Import:
		return m, nil
	}
	return "", fmt.Errorf("invalid mode %q: valid values are READWRITE, READONLY, IMPORT", s)
}

// snapshotFormat is the version of the data file layout. Version 1 is the
// first; a reader refuses versions it does not know.
const snapshotFormat = 1

// state is everything the registry stores. It is copied on write: a mutation
// works on clone() and replaces the server's state only once persisted, so a
// failed write leaves the served state untouched.
type state struct {
	NextID        int                    `json:"next_id"`
	Compatibility Level                  `json:"compatibility"`
	Mode          Mode                   `json:"mode"`
	Schemas       map[int]*schemaRec     `json:"-"`
	Subjects      map[string]*subjectRec `json:"subjects"`

	byKey  map[string]int // schemaKey -> id
	byGUID map[string]int // guid -> id
}

// schemaRec is one schema id. It is immutable once created.
type schemaRec struct {
	ID         int         `json:"id"`
	GUID       string      `json:"guid"`
	Type       SchemaType  `json:"schemaType"`
	Schema     string      `json:"schema"`
	References []Reference `json:"references,omitempty"`
	key        string
}

type subjectRec struct {
	Versions      []*versionRec `json:"versions"` // ascending by Version
	Compatibility Level         `json:"compatibility,omitempty"`
	Mode          Mode          `json:"mode,omitempty"`
}

type versionRec struct {
	Version int  `json:"version"`
	ID      int  `json:"id"`
	Deleted bool `json:"deleted,omitempty"`
}

func newState(level Level) *state {
	return &state{
		NextID:        1,
		Compatibility: level,
		Mode:          ReadWrite,
		Schemas:       map[int]*schemaRec{},
		Subjects:      map[string]*subjectRec{},
		byKey:         map[string]int{},
		byGUID:        map[string]int{},
	}
}

func (st *state) clone() *state {
	n := *st
	n.Schemas = maps.Clone(st.Schemas)
	n.byKey = maps.Clone(st.byKey)
	n.byGUID = maps.Clone(st.byGUID)
	n.Subjects = make(map[string]*subjectRec, len(st.Subjects))
	for name, sub := range st.Subjects {
		c := *sub
		c.Versions = make([]*versionRec, len(sub.Versions))
		for i, v := range sub.Versions {
			vc := *v
			c.Versions[i] = &vc
		}
		n.Subjects[name] = &c
	}
	return &n
}

// addSchema records a new schema id.
func (st *state) addSchema(rec *schemaRec) {
	st.Schemas[rec.ID] = rec
	if _, ok := st.byKey[rec.key]; !ok {
		st.byKey[rec.key] = rec.ID
	}
	st.byGUID[rec.GUID] = rec.ID
	if rec.ID >= st.NextID {
		st.NextID = rec.ID + 1
	}
}

// live returns the versions of a subject that are not soft-deleted, or all
// of them when deleted is true.
func (sub *subjectRec) live(deleted bool) []*versionRec {
	if sub == nil {
		return nil
	}
	var out []*versionRec
	for _, v := range sub.Versions {
		if deleted || !v.Deleted {
			out = append(out, v)
		}
	}
	return out
}

func (sub *subjectRec) find(version int) *versionRec {
	if sub == nil {
		return nil
	}
	for _, v := range sub.Versions {
		if v.Version == version {
			return v
		}
	}
	return nil
}

func (sub *subjectRec) maxVersion() int {
	if sub == nil || len(sub.Versions) == 0 {
		return 0
	}
	return sub.Versions[len(sub.Versions)-1].Version
}

func (sub *subjectRec) insert(v *versionRec) {
	sub.Versions = append(sub.Versions, v)
	sort.Slice(sub.Versions, func(i, j int) bool { return sub.Versions[i].Version < sub.Versions[j].Version })
}

// idInUse reports whether some version (soft-deleted included) still uses id.
func (st *state) idInUse(id int) bool {
	for _, sub := range st.Subjects {
		for _, v := range sub.Versions {
			if v.ID == id {
				return true
			}
		}
	}
	return false
}

// referencedBy returns the ids of schemas that reference subject/version and
// are used by a version (a soft-deleted one too when deleted is true).
func (st *state) referencedBy(subject string, version int, deleted bool) []int {
	var ids []int
	seen := map[int]bool{}
	for _, sub := range st.Subjects {
		for _, v := range sub.Versions {
			if (v.Deleted && !deleted) || seen[v.ID] {
				continue
			}
			rec := st.Schemas[v.ID]
			if rec == nil {
				continue
			}
			for _, r := range rec.References {
				if r.Subject == subject && r.Version == version {
					ids = append(ids, v.ID)
					seen[v.ID] = true
					break
				}
			}
		}
	}
	sort.Ints(ids)
	return ids
}

func newGUID() (string, error) {
	var g [16]byte
	if _, err := rand.Read(g[:]); err != nil {
		return "", err
	}
	g[6] = g[6]&0x0f | 0x40 // version 4
	g[8] = g[8]&0x3f | 0x80 // RFC 4122 variant
	return FormatGUID(g), nil
}

// snapshot is the data file's JSON layout.
type snapshot struct {
	Format        int                    `json:"format"`
	NextID        int                    `json:"next_id"`
	Compatibility Level                  `json:"compatibility"`
	Mode          Mode                   `json:"mode"`
	Schemas       []*schemaRec           `json:"schemas"`
	Subjects      map[string]*subjectRec `json:"subjects"`
}

func (st *state) marshal() ([]byte, error) {
	snap := snapshot{Format: snapshotFormat, NextID: st.NextID, Compatibility: st.Compatibility,
		Mode: st.Mode, Subjects: st.Subjects}
	for _, rec := range st.Schemas {
		snap.Schemas = append(snap.Schemas, rec)
	}
	sort.Slice(snap.Schemas, func(i, j int) bool { return snap.Schemas[i].ID < snap.Schemas[j].ID })
	return json.MarshalIndent(snap, "", "  ")
}

// loadState reads the data file; a missing file is an empty registry.
func loadState(path string, level Level) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(level), nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading registry data file: %w", err)
	}
	return decodeState(b, path, level)
}

// decodeState reads the data file's bytes; path names the file in errors.
func decodeState(b []byte, path string, level Level) (*state, error) {
	st := newState(level)
	var snap snapshot
	var err error
	if err = json.Unmarshal(b, &snap); err != nil {
		return nil, fmt.Errorf("registry data file %s: %w", path, err)
	}
	if snap.Format != snapshotFormat {
		return nil, fmt.Errorf("registry data file %s: format %d, this build reads format %d", path, snap.Format, snapshotFormat)
	}
	if snap.Compatibility != "" {
		if st.Compatibility, err = ParseLevel(string(snap.Compatibility)); err != nil {
			return nil, fmt.Errorf("registry data file %s: %w", path, err)
		}
	}
	if snap.Mode != "" {
		if st.Mode, err = ParseMode(string(snap.Mode)); err != nil {
			return nil, fmt.Errorf("registry data file %s: %w", path, err)
		}
	}
	for i, rec := range snap.Schemas {
		if rec == nil || rec.ID <= 0 || rec.ID > math.MaxInt32 {
			return nil, fmt.Errorf("registry data file %s: schema %d (of the schemas list) without a valid id (1 to 2^31-1)", path, i)
		}
		if st.Schemas[rec.ID] != nil {
			return nil, fmt.Errorf("registry data file %s: schema id %d listed twice", path, rec.ID)
		}
		if rec.Type == "" {
			rec.Type = Avro
		}
		st.Schemas[rec.ID] = rec
	}
	if snap.NextID > math.MaxInt32+1 {
		return nil, fmt.Errorf("registry data file %s: next_id %d: schema ids end at 2^31-1", path, snap.NextID)
	}
	if snap.NextID > st.NextID {
		st.NextID = snap.NextID
	}
	for name, sub := range snap.Subjects {
		if sub == nil {
			continue
		}
		seen := map[int]bool{}
		for i, v := range sub.Versions {
			if v == nil || v.Version < 1 || v.Version > math.MaxInt32 {
				return nil, fmt.Errorf("registry data file %s: subject %q: version %d (of its list) is not a version from 1 to 2^31-1", path, name, i)
			}
			if seen[v.Version] {
				return nil, fmt.Errorf("registry data file %s: subject %q: version %d listed twice", path, name, v.Version)
			}
			seen[v.Version] = true
			if st.Schemas[v.ID] == nil {
				return nil, fmt.Errorf("registry data file %s: subject %q version %d uses unknown schema id %d", path, name, v.Version, v.ID)
			}
		}
		sort.Slice(sub.Versions, func(i, j int) bool { return sub.Versions[i].Version < sub.Versions[j].Version })
		st.Subjects[name] = sub
	}
	// The keys are recomputed rather than stored, so a change of
	// canonicalisation applies to old data on the next start. They need the
	// subjects: a Protobuf schema's canonical form names the types its
	// references declare.
	ids := make([]int, 0, len(st.Schemas))
	for id := range st.Schemas {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		rec := st.Schemas[id]
		key, err := st.keyOf(rec)
		if err != nil {
			return nil, fmt.Errorf("registry data file %s: schema %d: %w", path, rec.ID, err)
		}
		rec.key = key
		st.addSchema(rec)
	}
	return st, nil
}

// keyOf computes a stored schema's key. A Protobuf schema that no longer
// parses (a stricter parser than the one that accepted it) keeps a key of
// its own text: its id still resolves, it just matches no new registration.
func (st *state) keyOf(rec *schemaRec) (string, error) {
	switch rec.Type {
	case Avro, JSON:
		c, _, err := canonicalJSON(rec.Schema)
		if err != nil {
			return "", err
		}
		return schemaKey(rec.Type, c, rec.References), nil
	case Protobuf:
		r := depResolver{st: st, memo: map[subjectVersion]*resolvedDep{}}
		deps, e := r.resolve(rec.References, 0, true)
		if e == nil {
			if p, err := parseSchema(rec.Type, rec.Schema, deps); err == nil {
				return schemaKey(rec.Type, p.canonical, rec.References), nil
			}
		}
		return schemaKey(rec.Type, "unparsed\x00"+rec.Schema, rec.References), nil
	}
	return "", fmt.Errorf("unknown schema type %q", rec.Type)
}

// writeFileAtomic writes b to path through a temporary file in the same
// directory, fsyncs it and renames it over path, then fsyncs the directory,
// so a crash leaves either the old or the new snapshot.
func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	cleanup := func() { _ = os.Remove(tmp) }
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		cleanup()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		cleanup()
		return err
	}
	if err := f.Close(); err != nil {
		cleanup()
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		cleanup()
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}
