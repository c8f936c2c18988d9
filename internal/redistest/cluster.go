package redistest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// A Cluster is a Redis Cluster of masters, each with its replicas, created
// with redis-cli --cluster create.
type Cluster struct {
	Nodes []*Server
}

// ClusterNodeTimeout is the cluster-node-timeout of the clusters started
// here: a master that stops answering is failed over after about this long
// plus an election (a second or two). Short enough for a test, long enough
// that a node starved of CPU on a loaded machine is not failed over.
const ClusterNodeTimeout = 2 * time.Second

// StartCluster starts masters x (1 + replicas) redis-servers in cluster mode,
// joins them with redis-cli --cluster create (masters get the slots, the rest
// become replicas), and waits until every node reports the cluster ok and
// every replica is in sync. args are extra configuration for every node.
func StartCluster(masters, replicas int, args ...string) (*Cluster, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli is not installed (apt-get install redis-tools): %w", ErrNotInstalled)
	}
	c := &Cluster{}
	for range masters * (1 + replicas) {
		bus, err := FreePort()
		if err != nil {
			c.Stop()
			return nil, err
		}
		s, err := Start(append([]string{"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", fmt.Sprint(ClusterNodeTimeout.Milliseconds()),
			"--cluster-port", fmt.Sprint(bus),
			"--repl-diskless-sync-delay", "0"}, args...)...)
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
	}
	create := []string{"--cluster", "create"}
	for _, s := range c.Nodes {
		create = append(create, s.Addr())
	}
	create = append(create, "--cluster-replicas", fmt.Sprint(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, create...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %w: %s", err, lastLines(string(out), 5))
	}
	if err := c.WaitHealthy(30 * time.Second); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// Addrs returns every node's address, for a ClusterClient's seed list.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Node returns the node listening at addr, nil if none.
func (c *Cluster) Node(addr string) *Server {
	for _, s := range c.Nodes {
		if s.Addr() == addr {
			return s
		}
	}
	return nil
}

// WaitHealthy waits until every running node reports cluster_state:ok, every
// slot's master is running, and every running replica's link to its master is
// up.
func (c *Cluster) WaitHealthy(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Second)
	defer cancel()
	return waitFor(timeout, "the cluster is healthy", func() (bool, error) {
		for _, s := range c.Nodes {
			if s.cmd == nil {
				continue
			}
			state, err := infoField(ctx, s.Addr(), "cluster_state", "CLUSTER", "INFO")
			if err != nil || state != "ok" {
				return false, err
			}
			role, err := Info(ctx, s.Addr(), "role")
			if err != nil {
				return false, err
			}
			if role == "slave" {
				if link, err := Info(ctx, s.Addr(), "master_link_status"); err != nil || link != "up" {
					return false, err
				}
			}
		}
		masters, err := c.Masters(ctx)
		if err != nil {
			return false, err
		}
		for _, m := range masters {
			if n := c.Node(m); n == nil || n.cmd == nil {
				return false, fmt.Errorf("master %s of some slots is not running", m)
			}
		}
		return true, nil
	})
}

// Masters returns the addresses of the masters that hold slots, as the first
// running node sees them (CLUSTER SLOTS).
func (c *Cluster) Masters(ctx context.Context) ([]string, error) {
	for _, s := range c.Nodes {
		if s.cmd == nil {
			continue
		}
		text, err := Do(ctx, s.Addr(), "CLUSTER", "NODES")
		if err != nil {
			return nil, err
		}
		var masters []string
		for line := range strings.SplitSeq(text, "\n") {
			// <id> <ip:port@bus> <flags> <master> <ping> <pong> <epoch> <state> <slots...>
			f := strings.Fields(line)
			if len(f) < 9 || !strings.Contains(f[2], "master") || strings.Contains(f[2], "fail") {
				continue
			}
			addr, _, _ := strings.Cut(f[1], "@")
			masters = append(masters, addr)
		}
		return masters, nil
	}
	return nil, errors.New("no cluster node is running")
}

// Stop kills every node and removes their directories.
func (c *Cluster) Stop() {
	for _, s := range c.Nodes {
		s.Stop()
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], " | ")
}
