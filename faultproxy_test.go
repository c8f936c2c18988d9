package kiwicache

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A faultProxy stands between a client and Redis on loopback and breaks the
// connection on demand: it delays the server's replies, cuts a connection
// after some bytes of reply, or drops every connection at once.
type faultProxy struct {
	l      net.Listener
	target string
	delay  atomic.Int64 // per chunk of reply, in nanoseconds
	cut    atomic.Int64 // close a connection after this many reply bytes; 0: never
	gen    atomic.Int64 // bumped by cutAfter: connections count reply bytes anew

	mu    sync.Mutex
	conns map[net.Conn]bool
}

func newFaultProxy(t testing.TB, target string) *faultProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &faultProxy{l: l, target: target, conns: map[net.Conn]bool{}}
	go p.serve()
	t.Cleanup(func() { l.Close(); p.dropAll() })
	return p
}

func (p *faultProxy) addr() string { return p.l.Addr().String() }

// cutAfter makes every connection close after n more bytes of reply (0: never).
func (p *faultProxy) cutAfter(n int64) {
	p.cut.Store(n)
	p.gen.Add(1)
}

func (p *faultProxy) serve() {
	for {
		client, err := p.l.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client, server)
		go func() { io.Copy(server, client); server.Close() }()
		go func() { p.reply(client, server); client.Close() }()
	}
}

// reply copies the server's reply to the client, with the faults set.
func (p *faultProxy) reply(client, server net.Conn) {
	buf := make([]byte, 64<<10)
	var sent, gen int64
	for {
		n, err := server.Read(buf)
		if g := p.gen.Load(); g != gen {
			gen, sent = g, 0
		}
		if n > 0 {
			if d := p.delay.Load(); d > 0 {
				time.Sleep(time.Duration(d))
			}
			if cut := p.cut.Load(); cut > 0 && sent+int64(n) > cut {
				client.Write(buf[:cut-sent]) // a partial reply, then nothing
				server.Close()
				return
			}
			if _, err := client.Write(buf[:n]); err != nil {
				return
			}
			sent += int64(n)
		}
		if err != nil {
			return
		}
	}
}

func (p *faultProxy) track(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		p.conns[c] = true
	}
}

// dropAll closes every connection through the proxy, mid-reply or not.
func (p *faultProxy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}
