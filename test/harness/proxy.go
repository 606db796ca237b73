package harness

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// Proxy is a TCP proxy a test controls, to cut a node off the network without
// stopping it: it listens on one address and forwards every connection to
// another. Cut closes the connections it carries and refuses new ones (all of
// them, or only those from given source IPs); Heal lets them through again.
//
// To partition a node, put a Proxy in front of each of its ports and make
// the other nodes reach it only there (advertise the proxy's address); bind
// every node on its own loopback IP so that its outgoing connections carry
// that IP, and cut the other nodes' proxies for it with CutFrom.
type Proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	cut     bool
	from    map[string]bool // source IPs refused while not cut as a whole
	conns   map[*proxyConn]bool
	closed  bool
	wg      sync.WaitGroup
	refused int
	delay   time.Duration // added to each direction (SetDelay)
}

type proxyConn struct {
	client, server net.Conn
	src            string
}

func (c *proxyConn) close() {
	c.client.Close()
	c.server.Close()
}

// NewProxy listens on listen ("127.0.0.1:0" for any port) and forwards to
// target. It is closed when the test ends.
func NewProxy(t testing.TB, listen, target string) *Proxy {
	t.Helper()
	p, err := StartProxy(listen, target)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// StartProxy is NewProxy outside a test; Close stops it.
func StartProxy(listen, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("proxy to %s: listening on %s: %w", target, listen, err)
	}
	p := &Proxy{ln: ln, target: target, from: map[string]bool{}, conns: map[*proxyConn]bool{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Cut closes every connection through the proxy and refuses new ones until
// Heal: nothing passes in either direction.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.close()
	}
}

// CutFrom closes the connections from the given source IPs and refuses their
// new ones until Heal; others pass.
func (p *Proxy) CutFrom(ips ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ip := range ips {
		p.from[ip] = true
	}
	for c := range p.conns {
		if p.from[c.src] {
			c.close()
		}
	}
}

// Heal lets every connection through again (after Cut or CutFrom).
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	p.from = map[string]bool{}
}

// SetDelay makes the proxy hold every byte for d in each direction before
// passing it on (a round trip gains 2d), like a long-distance link: data
// read from one side is written to the other d after it arrived, without
// limiting throughput (up to delayQueue chunks of 64 KiB in flight per
// direction). It applies to connections accepted afterwards; 0 turns it off.
func (p *Proxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.delay = d
}

// Refused is how many connections the proxy refused while cut.
func (p *Proxy) Refused() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refused
}

// Close stops the proxy and closes its connections.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.ln.Close()
	for c := range p.conns {
		c.close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) serve() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		src, _, _ := net.SplitHostPort(client.RemoteAddr().String())
		p.mu.Lock()
		refuse := p.cut || p.from[src] || p.closed
		if refuse {
			p.refused++
		}
		p.mu.Unlock()
		if refuse {
			client.Close()
			continue
		}
		p.wg.Add(1)
		go p.forward(client, src)
	}
}

func (p *Proxy) forward(client net.Conn, src string) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	c := &proxyConn{client: client, server: server, src: src}
	p.mu.Lock()
	// Cut while dialing: refuse it as if it came a moment later.
	if p.cut || p.from[src] || p.closed {
		p.refused++
		p.mu.Unlock()
		c.close()
		return
	}
	p.conns[c] = true
	delay := p.delay
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		if delay > 0 {
			delayedCopy(dst, src, delay)
		} else {
			io.Copy(dst, src)
		}
		// Either side ending ends both: a half-open proxied connection would
		// look alive to one end.
		c.close()
		done <- struct{}{}
	}
	go pipe(server, client)
	go pipe(client, server)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// delayQueue bounds the chunks a delayed direction holds (64 KiB each).
const delayQueue = 1024

// delayedCopy copies src to dst, writing each chunk d after it was read.
// It returns when either side fails or src ends (after writing what it
// read).
func delayedCopy(dst, src net.Conn, d time.Duration) {
	type chunk struct {
		due  time.Time
		data []byte
	}
	q := make(chan chunk, delayQueue)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{due: time.Now().Add(d), data: buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		if w := time.Until(c.due); w > 0 {
			time.Sleep(w)
		}
		if _, err := dst.Write(c.data); err != nil {
			src.Close() // unblocks the reader
			for range q {
			}
			return
		}
	}
}
