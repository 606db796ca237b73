package coord

import (
	"net"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// A node bound to a specific IP advertises its advertised address and dials
// its peers from the bound IP, so that a proxy or firewall in front of a peer
// can tell nodes apart (and the chaos suite can partition one).
func TestPlainTransportAdvertisesAndDialsFromTheBoundIP(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 not usable here: %v", err)
	}
	bound := probe.Addr().String()
	probe.Close()
	peer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	cfg := Config{RaftAddr: bound, RaftAdvertise: "127.0.0.1:7999"}
	trans, err := newTransport(cfg, &raft.NetworkTransportConfig{MaxPool: 1, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer trans.Close()
	if got := string(trans.LocalAddr()); got != "127.0.0.1:7999" {
		t.Errorf("LocalAddr() = %s, want the advertised 127.0.0.1:7999", got)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := peer.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	// The stream newTransport gives a plain-TCP node.
	s := &tcpStream{dialer: SourceDialer(cfg.RaftAddr)}
	c, err := s.Dial(raft.ServerAddress(peer.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case a := <-accepted:
		defer a.Close()
		if host, _, _ := net.SplitHostPort(a.RemoteAddr().String()); host != "127.0.0.2" {
			t.Errorf("the peer sees the dial from %s, want the bound IP 127.0.0.2", a.RemoteAddr())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the peer accepted nothing")
	}
}

func TestSourceIP(t *testing.T) {
	for addr, want := range map[string]string{
		"10.0.0.5:7400": "10.0.0.5", "127.0.0.3:1": "127.0.0.3", "[fd00::5]:7400": "fd00::5",
		"0.0.0.0:7400": "", "[::]:7400": "", "node-1:7400": "", "nope": "",
	} {
		got := SourceIP(addr)
		if (got == nil) != (want == "") || got != nil && got.String() != want {
			t.Errorf("SourceIP(%q) = %v, want %q", addr, got, want)
		}
	}
}
