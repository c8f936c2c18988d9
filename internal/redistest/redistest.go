// Package redistest starts real Redis deployments for tests and benchmarks:
// a single redis-server, a Redis Cluster of masters with replicas, and a
// master-replica pair watched by Sentinels. Every process runs from PATH on
// loopback ports of its own, in a temporary directory, and is killed by Stop.
//
// Tests call it from one place per test binary (a top-level test with
// subtests) so that a deployment is started once: on a machine with two
// cores, six redis-servers started per test would cost more than the tests.
package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ErrNotInstalled is returned when redis-server (or redis-cli, for a
// cluster) is not on PATH: callers skip, saying so.
var ErrNotInstalled = errors.New("redis-server is not installed (apt-get install redis-server)")

// A Server is one redis-server process on a loopback port of its own. It can
// be killed and started again on the same port, with the same configuration.
type Server struct {
	Port int
	Dir  string
	bin  string
	args []string
	// first go before every other argument: a sentinel's config file.
	first []string
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd has exited
}

// Start starts a redis-server with extra configuration arguments (as on its
// command line: "--requirepass", "pw"). "{port}" in an argument is replaced
// by the server's port. It waits until the server accepts connections.
func Start(args ...string) (*Server, error) {
	s, err := newServer(args)
	if err != nil {
		return nil, err
	}
	if err := s.Restart(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// newServer prepares a Server on a free port, with its directory, without
// starting it.
func newServer(args []string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNotInstalled
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "kiwicache-redis")
	if err != nil {
		return nil, err
	}
	return &Server{Port: port, Dir: dir, bin: bin, args: args}, nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr is host:port.
func (s *Server) Addr() string { return fmt.Sprintf("127.0.0.1:%d", s.Port) }

// URL is the redis:// URL of database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Restart starts the server again after Kill (or for the first time), with
// no data (nothing is saved), and waits until it accepts connections.
func (s *Server) Restart() error { return s.RestartWith() }

// RestartWith is Restart with more configuration for this start only (such
// as "--replicaof", host, port).
func (s *Server) RestartWith(extra ...string) error {
	if s.cmd != nil {
		return fmt.Errorf("redis-server on port %d is running", s.Port)
	}
	args := append(slices.Clone(s.first), "--port", fmt.Sprint(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.Dir,
		"--logfile", filepath.Join(s.Dir, "redis.log"))
	for _, a := range append(slices.Clone(s.args), extra...) { // later settings win
		args = append(args, strings.ReplaceAll(a, "{port}", fmt.Sprint(s.Port)))
	}
	s.cmd = exec.Command(s.bin, args...)
	DieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		s.cmd = nil
		return err
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	for range 400 {
		select {
		case <-s.done:
			s.cmd = nil
			return fmt.Errorf("redis-server on port %d exited at start: %s", s.Port, s.LogTail(5))
		default:
		}
		if c, err := net.Dial("tcp", s.Addr()); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return fmt.Errorf("redis-server on port %d did not start: %s", s.Port, s.LogTail(5))
}

// Kill ends the server with SIGKILL: no shutdown, no goodbye to clients or
// replicas. Its data is gone.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
}

// Signal sends sig to the running server (SIGSTOP and SIGCONT freeze and
// resume it).
func (s *Server) Signal(sig os.Signal) error {
	if s.cmd == nil {
		return fmt.Errorf("redis-server on port %d is not running", s.Port)
	}
	return s.cmd.Process.Signal(sig)
}

// Stop kills the server and removes its directory.
func (s *Server) Stop() {
	s.Kill()
	os.RemoveAll(s.Dir)
}

// LogTail returns the last n lines of the server's log, for error messages.
func (s *Server) LogTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}

// Do runs one command on the server over plain RESP, and
// returns the reply as text (bulk strings and simple strings as is, integers
// in decimal, arrays as their elements joined by newlines). It is for the
// deployment's own setup, which must not depend on the client under test.
func (s *Server) Do(ctx context.Context, args ...string) (string, error) {
	return Do(ctx, s.Addr(), args...)
}

// Do runs one command on the server at addr; see Server.Do.
func Do(ctx context.Context, addr string, args ...string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	} else {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	return readReply(bufio.NewReader(conn))
}

func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply line")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		var n int
		fmt.Sscan(line[1:], &n)
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	case '*':
		var n int
		fmt.Sscan(line[1:], &n)
		parts := make([]string, 0, max(n, 0))
		for range n {
			p, err := readReply(r)
			if err != nil {
				return "", err
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "\n"), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}

// Info returns one field of INFO (such as "role" or "master_link_status")
// from the server at addr, "" when absent.
func Info(ctx context.Context, addr, field string) (string, error) {
	return infoField(ctx, addr, field, "INFO")
}

// infoField returns field of the "field:value" lines that command replies.
func infoField(ctx context.Context, addr, field string, command ...string) (string, error) {
	text, err := Do(ctx, addr, command...)
	if err != nil {
		return "", err
	}
	for line := range strings.SplitSeq(text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v, nil
		}
	}
	return "", nil
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			lastErr = err
		}
		if time.Now().After(deadline) {
			if lastErr != nil {
				return fmt.Errorf("timed out after %v waiting until %s: %w", timeout, what, lastErr)
			}
			return fmt.Errorf("timed out after %v waiting until %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
