package registry

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Limits of the embedded registry's HTTP server. A client gets this long to
// send its headers and its request, to read the answer, and to keep an idle
// connection open; a slow or idle client cannot hold connections for ever.
const (
	serverReadHeaderTimeout = 10 * time.Second
	serverReadTimeout       = 30 * time.Second
	serverWriteTimeout      = 60 * time.Second
	serverIdleTimeout       = 2 * time.Minute
)

// BasicAuth is the user list of the embedded registry (--basic-auth-file).
// Only hashes are kept: a file of plain passwords would hand out every
// password to whoever reads it.
type BasicAuth struct {
	users map[string]string // user -> "$2a$..." (bcrypt) or "sha256:<hex>"
	// dummy is compared against for unknown users, at the highest cost of
	// the file, so that a wrong user takes as long as a wrong password (no
	// user enumeration by timing).
	dummy []byte
	// ok caches the SHA-256 of credentials that bcrypt accepted, so that a
	// client's every request does not pay bcrypt's deliberate cost. Bounded.
	mu sync.Mutex
	ok map[[32]byte]bool
}

// maxAuthCache bounds BasicAuth's cache of accepted credentials.
const maxAuthCache = 256

// LoadBasicAuth reads a basic-auth file: one "user:hash" a line, blank lines
// and lines starting with # ignored. hash is a bcrypt hash ("$2a$", "$2b$" or
// "$2y$", as `htpasswd -nbB user pass` prints) or "sha256:" and the hex
// SHA-256 of the password (`printf %s "$PASS" | sha256sum`; unsalted, so only
// for long random passwords). The file must not be readable or writable by
// group or others.
func LoadBasicAuth(path string) (*BasicAuth, error) {
	b, err := readPrivateFile(path, "basic-auth file")
	if err != nil {
		return nil, err
	}
	a := &BasicAuth{users: map[string]string{}, ok: map[[32]byte]bool{}}
	cost := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		user, hash, ok := strings.Cut(s, ":")
		switch {
		case !ok || user == "" || hash == "":
			return nil, fmt.Errorf("%s:%d: want user:hash", path, line)
		case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
			c, err := bcrypt.Cost([]byte(hash))
			if err != nil {
				return nil, fmt.Errorf("%s:%d: user %s: not a valid bcrypt hash", path, line, user)
			}
			cost = max(cost, c)
		case strings.HasPrefix(hash, "sha256:"):
			if h, err := hex.DecodeString(hash[7:]); err != nil || len(h) != sha256.Size {
				return nil, fmt.Errorf("%s:%d: user %s: sha256: wants 64 hex digits", path, line, user)
			}
		default:
			// Never echo the value: it may be a plain password.
			return nil, fmt.Errorf("%s:%d: user %s: the password must be a bcrypt hash ($2a$/$2b$/$2y$) or sha256:<hex>, not plain text", path, line, user)
		}
		if _, dup := a.users[user]; dup {
			return nil, fmt.Errorf("%s:%d: user %s listed twice", path, line, user)
		}
		a.users[user] = hash
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading basic-auth file %s: %w", path, err)
	}
	if len(a.users) == 0 {
		return nil, fmt.Errorf("basic-auth file %s lists no user", path)
	}
	if cost > 0 {
		if a.dummy, err = bcrypt.GenerateFromPassword([]byte(rand.Text()), cost); err != nil {
			return nil, fmt.Errorf("basic-auth file %s: %w", path, err)
		}
	}
	return a, nil
}

// Check reports whether user and pass are valid credentials.
func (a *BasicAuth) Check(user, pass string) bool {
	hash, known := a.users[user]
	key := sha256.Sum256([]byte(user + "\x00" + pass))
	a.mu.Lock()
	cached := a.ok[key]
	a.mu.Unlock()
	if cached && known {
		return true
	}
	var good bool
	switch {
	case !known:
		if a.dummy != nil {
			_ = bcrypt.CompareHashAndPassword(a.dummy, []byte(pass))
		}
	case strings.HasPrefix(hash, "sha256:"):
		want, _ := hex.DecodeString(hash[7:])
		got := sha256.Sum256([]byte(pass))
		good = subtle.ConstantTimeCompare(want, got[:]) == 1
	default:
		good = bcrypt.CompareHashAndPassword([]byte(hash), []byte(pass)) == nil
	}
	if good {
		a.mu.Lock()
		if len(a.ok) >= maxAuthCache {
			clear(a.ok)
		}
		a.ok[key] = true
		a.mu.Unlock()
	}
	return good
}

// authorize answers 401 and reports false when the request lacks valid
// credentials. The log line names the user, never the password.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) bool {
	a := s.opts.BasicAuth
	if a == nil {
		return true
	}
	user, pass, ok := r.BasicAuth()
	if ok && a.Check(user, pass) {
		return true
	}
	s.log.Warn("registry request denied", "user", user, "credentials", ok, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
	w.Header().Set("WWW-Authenticate", `Basic realm="tributary registry", charset="UTF-8"`)
	writeErr(w, &APIError{Status: http.StatusUnauthorized, Code: http.StatusUnauthorized, Message: "Unauthorized"})
	return false
}

// serverTLS loads the server certificate of --tls-cert/--tls-key; the key file
// must be private to its owner.
func serverTLS(certFile, keyFile string) (*tls.Config, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("registry server: --tls-cert and --tls-key go together")
	}
	if certFile == "" {
		return nil, nil
	}
	key, err := readPrivateFile(keyFile, "TLS key file")
	if err != nil {
		return nil, fmt.Errorf("registry server: %w", err)
	}
	cert, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("registry server: reading TLS certificate: %w", err)
	}
	pair, err := tls.X509KeyPair(cert, key)
	if err != nil {
		// The error of X509KeyPair names no key material.
		return nil, fmt.Errorf("registry server: TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// readPrivateFile reads a file holding secrets, refusing one that group or
// others may read or write: whoever else can read it has the secret.
func readPrivateFile(path, what string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if mode := fi.Mode().Perm(); mode&0o077 != 0 {
		return nil, fmt.Errorf("%s %s has mode %#o: it must be readable by its owner only (chmod 600 %s)", what, path, mode, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return b, nil
}
