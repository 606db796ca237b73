package harness

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with itself.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip dials addr from the local IP from (empty: any), sends a line and
// returns the error of reading it back.
func roundTrip(addr, from string) (net.Conn, error) {
	d := net.Dialer{Timeout: 2 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if err := echo(c); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func echo(c net.Conn) error {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "ping\n" {
		return io.ErrUnexpectedEOF
	}
	return nil
}

func TestProxyCutAndHeal(t *testing.T) {
	p := NewProxy(t, "127.0.0.1:0", echoServer(t))
	c, err := roundTrip(p.Addr(), "")
	if err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	defer c.Close()

	p.Cut()
	if err := echo(c); err == nil {
		t.Fatal("an open connection still carries data after Cut")
	}
	if c2, err := roundTrip(p.Addr(), ""); err == nil {
		c2.Close()
		t.Fatal("a new connection passes after Cut")
	}
	if p.Refused() == 0 {
		t.Error("Refused() = 0 after refusing a connection")
	}

	p.Heal()
	c3, err := roundTrip(p.Addr(), "")
	if err != nil {
		t.Fatalf("after Heal: %v", err)
	}
	c3.Close()
}

func TestProxyCutFromSourceIP(t *testing.T) {
	// Linux routes all of 127.0.0.0/8 to the loopback interface.
	if ln, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("127.0.0.2 not usable here: %v", err)
	} else {
		ln.Close()
	}
	p := NewProxy(t, "127.0.0.1:0", echoServer(t))
	other, err := roundTrip(p.Addr(), "127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	victim, err := roundTrip(p.Addr(), "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	defer victim.Close()

	p.CutFrom("127.0.0.2")
	if err := echo(victim); err == nil {
		t.Fatal("the cut source's open connection still carries data")
	}
	if c, err := roundTrip(p.Addr(), "127.0.0.2"); err == nil {
		c.Close()
		t.Fatal("the cut source connects again")
	}
	if err := echo(other); err != nil {
		t.Fatalf("another source's connection was cut: %v", err)
	}
	if c, err := roundTrip(p.Addr(), "127.0.0.3"); err != nil {
		t.Fatalf("another source cannot connect: %v", err)
	} else {
		c.Close()
	}

	p.Heal()
	if c, err := roundTrip(p.Addr(), "127.0.0.2"); err != nil {
		t.Fatalf("after Heal: %v", err)
	} else {
		c.Close()
	}
}

func TestProxyDelay(t *testing.T) {
	p := NewProxy(t, "127.0.0.1:0", echoServer(t))
	p.SetDelay(50 * time.Millisecond)
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	// Sent back to back, both lines come back after at least one round trip
	// (2 × 50 ms).
	start := time.Now()
	if _, err := c.Write([]byte("one\ntwo\n")); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one\n", "two\n"} {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		got, err := r.ReadString('\n')
		if err != nil || got != want {
			t.Fatalf("read %q, %v; want %q", got, err, want)
		}
	}
	if rtt := time.Since(start); rtt < 100*time.Millisecond {
		t.Fatalf("round trip through a proxy delaying 50 ms each way took %v, want >= 100ms", rtt)
	}
	// Closing our side ends the proxied connection after the data passed.
	c.Close()
}
