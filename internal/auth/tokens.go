package auth

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tributary-dev/tributary/internal/yamlerr"
)

// Role is what a token may do; a stronger role may do all a weaker one may.
type Role int

// Roles, weakest first.
const (
	Read    Role = iota + 1 // read status, cluster and offsets
	Operate                 // also reload policies
	Admin                   // also change cluster membership
)

var roleNames = map[Role]string{Read: "read", Operate: "operate", Admin: "admin"}

// String returns the role as written in the tokens file.
func (r Role) String() string {
	if s, ok := roleNames[r]; ok {
		return s
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// Token is one entry of the tokens file, without its hash.
type Token struct {
	Name string
	Role Role
}

// Tokens is a loaded tokens file. It is safe for concurrent use.
type Tokens struct {
	entries []entry
}

type entry struct {
	Token
	sum [sha256.Size]byte
}

// maxFileSize bounds the tokens file: a few hundred entries at most.
const maxFileSize = 1 << 20

// Load reads the tokens file at path: a YAML list of
//
//   - {name: grafana, role: read, sha256: <hex of the token's SHA-256>}
//
// Unknown keys, missing fields, unknown roles, malformed hashes and duplicate
// names or hashes are errors with the file, line and column; a file that
// group or others may read or write is refused (the hashes of short tokens
// could be guessed from it).
func Load(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening tokens file: %w", err)
	}
	defer f.Close()
	// The mode of the file opened, not of whatever the path names later.
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("tokens file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("tokens file %s: group or others may access it (mode %#o): make it readable by its owner only (chmod 600)", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading tokens file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("tokens file %s: larger than %d bytes", path, maxFileSize)
	}
	return Parse(path, data)
}

// Parse reads a tokens file's content; file names it in errors. Load is Parse
// with the file's permissions checked.
func Parse(file string, data []byte) (*Tokens, error) {
	root, next, yerr := yamlerr.Document(file, data)
	if yerr != nil {
		return nil, yerr
	}
	w := yamlerr.NewWalker(file)
	switch {
	case next != nil:
		w.Errorf(next, "", "a tokens file holds one YAML document")
	case root == nil:
		w.Errorf(&yaml.Node{Line: 1, Column: 1}, "", "no tokens: want a list of {name, role, sha256}")
	case root.Kind != yaml.SequenceNode:
		w.Errorf(root, "", "want a list of {name, role, sha256}, got %s", kind(root))
	}
	if len(w.Errors) > 0 {
		return nil, yamlerr.Join(w.Errors...)
	}
	t := &Tokens{}
	names := map[string]string{}  // name -> path of its first use
	hashes := map[string]string{} // hex -> path of its first use
	for i, item := range root.Content {
		path := yamlerr.Index("", i)
		if item.Kind != yaml.MappingNode {
			w.Errorf(item, path, "want a mapping {name, role, sha256}, got %s", kind(item))
			continue
		}
		var e entry
		seen := map[string]*yaml.Node{}
		for j := 0; j+1 < len(item.Content); j += 2 {
			k, v := item.Content[j], item.Content[j+1]
			kp := yamlerr.Key(path, k.Value)
			if _, dup := seen[k.Value]; dup {
				w.Errorf(k, kp, "duplicate key (first at line %d)", seen[k.Value].Line)
				continue
			}
			seen[k.Value] = k
			if k.Value != "name" && k.Value != "role" && k.Value != "sha256" {
				w.Errorf(k, kp, "unknown key%s", yamlerr.DidYouMean(k.Value, []string{"name", "role", "sha256"}))
				continue
			}
			if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
				w.Errorf(v, kp, "want a string, got %s", kind(v))
				continue
			}
			switch k.Value {
			case "name":
				switch first := names[v.Value]; {
				case v.Value == "":
					w.Errorf(v, kp, "must not be empty")
				case first != "":
					w.Errorf(v, kp, "duplicate name %q (also %s)", v.Value, first)
				default:
					names[v.Value] = kp
					e.Name = v.Value
				}
			case "role":
				for r, s := range roleNames {
					if s == v.Value {
						e.Role = r
					}
				}
				if e.Role == 0 {
					w.Errorf(v, kp, "%q is not one of read, operate, admin", v.Value)
				}
			case "sha256":
				// The value is not printed: it is as good as the token to
				// anyone who can guess short tokens.
				sum, err := hex.DecodeString(strings.ToLower(v.Value))
				switch {
				case err != nil || len(sum) != sha256.Size:
					w.Errorf(v, kp, "want the 64 hex digits of the token's SHA-256 (sha256sum of the token)")
				case hashes[string(sum)] != "":
					w.Errorf(v, kp, "duplicate sha256 (also %s): two names for one token", hashes[string(sum)])
				default:
					hashes[string(sum)] = kp
					copy(e.sum[:], sum)
				}
			}
		}
		for _, key := range []string{"name", "role", "sha256"} {
			if seen[key] == nil {
				w.Errorf(item, yamlerr.Key(path, key), "required")
			}
		}
		t.entries = append(t.entries, e)
	}
	if len(w.Errors) > 0 {
		return nil, yamlerr.Join(w.Errors...)
	}
	return t, nil
}

func kind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	return "a scalar"
}

// Len returns the number of tokens.
func (t *Tokens) Len() int { return len(t.entries) }

// Lookup returns the entry of the token secret. It compares the token's hash
// with every entry in constant time, so the answer's timing says nothing about
// which entry (or how much of one) matched.
func (t *Tokens) Lookup(secret string) (Token, bool) {
	sum := sha256.Sum256([]byte(secret))
	var found Token
	match := 0
	for _, e := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], e.sum[:]) == 1 {
			found, match = e.Token, 1
		}
	}
	return found, match == 1
}

// ReadTokenFile reads a token from path (as the CLI's --token-file gives it):
// the file's content without surrounding white space. Like the tokens file it
// must not be accessible to group or others.
func ReadTokenFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("opening token file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("token file %s: %w", path, err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("token file %s: group or others may access it (mode %#o): make it readable by its owner only (chmod 600)", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return "", fmt.Errorf("reading token file %s: %w", path, err)
	}
	tok := string(bytes.TrimSpace(data))
	if tok == "" {
		return "", fmt.Errorf("token file %s: empty", path)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", errors.New("token file " + path + ": want one token, without white space inside")
	}
	return tok, nil
}
