package yamlerr

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Pos is a 1-based line and column in a YAML file; the zero Pos is unknown.
type Pos struct{ Line, Col int }

// At returns the position of node n.
func At(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

// Positions maps key paths, as in "rules[2].action", to where they are written.
// A decoder records the paths it meets; paths not written in the file (left to
// their defaults) are absent.
type Positions map[string]Pos

// Set records that path is written at node n.
func (p Positions) Set(path string, n *yaml.Node) { p[path] = At(n) }

// Nearest returns the position of path or, when path is not written in the
// file, of its nearest written parent; the zero Pos when neither is.
func (p Positions) Nearest(path string) Pos {
	for {
		if pos, ok := p[path]; ok {
			return pos
		}
		if path == "" {
			return Pos{}
		}
		path = Parent(path)
	}
}

// Key returns the path of key in the mapping at path: "rules[2]" and "action"
// give "rules[2].action".
func Key(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index returns the path of item i of the list at path: "rules" and 2 give
// "rules[2]".
func Index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// Parent strips the last element of a key path: "rules[2].action" →
// "rules[2]" → "rules" → "".
func Parent(path string) string {
	if strings.HasSuffix(path, "]") {
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// MaxSteps bounds the values a Walker visits in one file, so that aliases
// cannot make a small file expensive (the "billion laughs" attack). Real
// config and policy files have a few thousand values at most.
const MaxSteps = 100_000

// Walker is the part of a strict decoder that config and policy share. A
// decoder embeds it while it walks a yaml.Node tree: it gathers every problem
// instead of stopping at the first, remembers which paths could not be
// decoded, so that later checks do not repeat the problem, and holds the
// positions of key paths. A Walker is used by one goroutine.
type Walker struct {
	// File names the file in errors.
	File string
	// Errors are the problems found so far, in the order found.
	Errors []*Error
	// Pos is where each key path is written, as the decoder records them.
	Pos Positions
	// bad holds the key paths whose value could not be decoded (or that a
	// misspelt key was probably meant to be), and above the paths containing
	// them.
	bad, above map[string]bool
	steps      int
	tooComplex bool
}

// NewWalker returns a Walker for the file named file.
func NewWalker(file string) *Walker {
	return &Walker{File: file, Pos: Positions{}, bad: map[string]bool{}, above: map[string]bool{}}
}

// Errorf records a problem at node n and key path path.
func (w *Walker) Errorf(n *yaml.Node, path, format string, args ...any) {
	w.Errors = append(w.Errors, &Error{File: w.File, Line: n.Line, Col: n.Column, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Fail is Errorf for a value that could not be decoded: it also marks path bad.
func (w *Walker) Fail(n *yaml.Node, path, format string, args ...any) {
	w.Errorf(n, path, format, args...)
	w.MarkBad(path)
}

// MarkBad records that path holds no usable value, so that Covers reports it
// and every path above or below it.
func (w *Walker) MarkBad(path string) {
	w.bad[path] = true
	for p := path; p != ""; {
		p = Parent(p)
		w.above[p] = true
	}
}

// Covers reports whether a decoding error already explains a problem at path:
// one at path, above it or below it. Validation that runs after the walk
// drops its own errors at such paths, which would only repeat the problem.
func (w *Walker) Covers(path string) bool {
	if w.above[path] {
		return true
	}
	for p := path; ; p = Parent(p) {
		if w.bad[p] {
			return true
		}
		if p == "" {
			return false
		}
	}
}

// Step counts one value visited at node n and path, and reports whether the
// walk may go on. Past MaxSteps it fails once, at the value that crossed the
// limit, and returns false from then on.
func (w *Walker) Step(n *yaml.Node, path string) bool {
	w.steps++
	if w.steps <= MaxSteps {
		return true
	}
	if !w.tooComplex {
		w.tooComplex = true
		w.Fail(n, path, "document too complex: aliases expand to more than %d values", MaxSteps)
	}
	return false
}

// TooComplex reports whether the walk went past MaxSteps.
func (w *Walker) TooComplex() bool { return w.tooComplex }
