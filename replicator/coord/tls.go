package coord

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/tributary-dev/tributary/internal/nodecert"
)

// tlsStream is raft's StreamLayer over mutual TLS: both ends present a node
// certificate of the cluster CA naming a tributary:// identity, and refuse a
// peer that does not. Under raft.NetworkTransport it replaces the plain TCP
// stream layer of raft.NewTCPTransport.
type tlsStream struct {
	net.Listener
	advertise net.Addr
	server    *tls.Config
	client    *tls.Config
	// handshake bounds a TLS handshake on either side, so a peer that connects
	// and says nothing holds no goroutine for long.
	handshake time.Duration
	// dialer is copied for each Dial (its LocalAddr is the source IP).
	dialer *net.Dialer
}

func newTLSStream(ln net.Listener, advertise net.Addr, b *nodecert.Bundle, handshake time.Duration, dialer *net.Dialer) *tlsStream {
	server := b.ServerConfig(true)
	pool := b.Pool
	server.VerifyConnection = func(cs tls.ConnectionState) error {
		// The handshake verified the chain; a certificate of the CA that names no
		// node (an operator's client certificate, say) does not speak Raft.
		_, _, err := nodecert.VerifyPeer(cs, pool, x509.ExtKeyUsageClientAuth)
		return err
	}
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	return &tlsStream{Listener: ln, advertise: advertise, server: server, client: b.ClientConfig(), handshake: handshake, dialer: dialer}
}

// Accept returns the next connection without handshaking: raft's accept loop
// would otherwise wait on one slow peer. The handshake runs, bounded, on the
// connection's first read or write, in raft's goroutine for that connection.
func (s *tlsStream) Accept() (net.Conn, error) {
	c, err := s.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &lazyTLS{Conn: tls.Server(c, s.server), timeout: s.handshake}, nil
}

// Addr is the advertised address (the listener may be bound to another).
func (s *tlsStream) Addr() net.Addr { return s.advertise }

// Dial connects to a peer's Raft address and completes the handshake within
// timeout; the peer must present a node certificate of the cluster CA.
func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	nd := *s.dialer
	nd.Timeout = timeout
	d := &tls.Dialer{NetDialer: &nd, Config: s.client}
	c, err := d.Dial("tcp", string(addr))
	if err != nil {
		return nil, fmt.Errorf("dialing raft peer %s over tls: %w", addr, err)
	}
	return c, nil
}

// lazyTLS is a server-side TLS connection whose handshake runs, with a
// deadline, before its first read or write.
type lazyTLS struct {
	*tls.Conn
	timeout time.Duration
	once    sync.Once
	err     error
}

func (c *lazyTLS) handshake() error {
	c.once.Do(func() {
		_ = c.Conn.SetDeadline(time.Now().Add(c.timeout))
		if err := c.Conn.Handshake(); err != nil {
			c.err = fmt.Errorf("raft tls handshake with %s: %w", c.Conn.RemoteAddr(), err)
			_ = c.Conn.Close()
			return
		}
		_ = c.Conn.SetDeadline(time.Time{})
	})
	return c.err
}

func (c *lazyTLS) Read(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *lazyTLS) Write(p []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// newTransport makes Raft's network transport: mutual TLS when the node has a
// certificate, plain TCP otherwise (loopback and insecure setups). It listens
// on RaftAddr, advertises raftAdvertised() and dials peers from
// SourceIP(RaftAddr).
func newTransport(cfg Config, tc *raft.NetworkTransportConfig) (*raft.NetworkTransport, error) {
	key := cfg.raftAdvertisedKey()
	advertise, err := net.ResolveTCPAddr("tcp", cfg.raftAdvertised())
	if err != nil {
		return nil, fmt.Errorf("%s (%q): %w", key, cfg.raftAdvertised(), err)
	}
	if advertise.IP == nil || advertise.IP.IsUnspecified() {
		return nil, fmt.Errorf("%s (%q): not an address other nodes can reach", key, cfg.raftAdvertised())
	}
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("listening for raft on %s: %w", cfg.RaftAddr, err)
	}
	dialer := SourceDialer(cfg.RaftAddr)
	if cfg.TLS == nil {
		tc.Stream = &tcpStream{Listener: ln, advertise: advertise, dialer: dialer}
	} else {
		tc.Stream = newTLSStream(ln, advertise, cfg.TLS, tc.Timeout, dialer)
	}
	return raft.NewNetworkTransportWithConfig(tc), nil
}

// tcpStream is raft's StreamLayer over plain TCP, as raft.NewTCPTransport's,
// except that it advertises an address of its own and dials from the bound IP.
type tcpStream struct {
	net.Listener
	advertise net.Addr
	dialer    *net.Dialer
}

// Addr is the advertised address (the listener may be bound to another).
func (s *tcpStream) Addr() net.Addr { return s.advertise }

// Dial connects to a peer's Raft address within timeout.
func (s *tcpStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := *s.dialer
	d.Timeout = timeout
	c, err := d.Dial("tcp", string(addr))
	if err != nil {
		return nil, fmt.Errorf("dialing raft peer %s: %w", addr, err)
	}
	return c, nil
}

// newHTTPClient is the client of node-to-node calls: it presents the node
// certificate and trusts only servers with one when TLS is configured.
// Its connections originate from SourceIP(raftAddr).
func newHTTPClient(b *nodecert.Bundle, raftAddr string) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = SourceDialer(raftAddr).DialContext
	if b != nil {
		t.TLSClientConfig = b.ClientConfig()
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: t}
}

// PeerIdentity returns the node (region and id) named by the verified
// certificate the client of r presented, ok false when it presented none. The
// HTTP server verifies a given certificate against the cluster CA, so a
// certificate of another CA never gets this far. Auth middleware uses it for
// the endpoints only nodes call: a token is never enough there.
func PeerIdentity(r *http.Request) (region, id string, ok bool) {
	return nodecert.PeerIdentity(r.TLS)
}

// errIdentity is what a request whose certificate does not name its sender
// gets; the handlers answer 403.
var errIdentity = errors.New("coord: peer certificate does not name the sender")
