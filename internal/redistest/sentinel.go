package redistest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SentinelMaster is the name the Sentinels of StartSentinel monitor.
const SentinelMaster = "kiwimaster"

// SentinelDownAfter is how long a master stays unreachable before the
// Sentinels of StartSentinel start a failover.
const SentinelDownAfter = 500 * time.Millisecond

// A Sentinel deployment: a master, one replica and three Sentinels (quorum 2)
// watching them.
type Sentinel struct {
	Data      []*Server // the master and the replica, in the order started
	Sentinels []*Server
}

// StartSentinel starts a master, a replica of it and three Sentinels, and
// waits until every Sentinel knows the replica and the other two Sentinels,
// so that a failover can be agreed on. args are extra configuration for the
// master and the replica.
func StartSentinel(args ...string) (*Sentinel, error) {
	d := &Sentinel{}
	// A replica that (re)joins syncs at once, not after the default 5 s
	// wait for more replicas to share the transfer.
	args = append([]string{"--repl-diskless-sync-delay", "0"}, args...)
	master, err := Start(args...)
	if err != nil {
		return nil, err
	}
	d.Data = append(d.Data, master)
	replica, err := Start(append(args, "--replicaof", "127.0.0.1", fmt.Sprint(master.Port))...)
	if err != nil {
		d.Stop()
		return nil, err
	}
	d.Data = append(d.Data, replica)
	for range 3 {
		s, err := newServer(nil)
		if err != nil {
			d.Stop()
			return nil, err
		}
		// A Sentinel rewrites its config file: each has its own.
		conf := filepath.Join(s.Dir, "sentinel.conf")
		text := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]d 2\n"+
			"sentinel down-after-milliseconds %[1]s %[3]d\n"+
			"sentinel failover-timeout %[1]s 2000\n"+
			"sentinel parallel-syncs %[1]s 1\n", SentinelMaster, master.Port, SentinelDownAfter.Milliseconds())
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			s.Stop()
			d.Stop()
			return nil, err
		}
		s.first = []string{conf, "--sentinel"}
		d.Sentinels = append(d.Sentinels, s)
		if err := s.Restart(); err != nil {
			d.Stop()
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = waitFor(20*time.Second, "the Sentinels know the replica and each other", func() (bool, error) {
		if link, err := Info(ctx, replica.Addr(), "master_link_status"); err != nil || link != "up" {
			return false, err
		}
		for _, s := range d.Sentinels {
			fields, err := d.masterFields(ctx, s.Addr())
			if err != nil {
				return false, err
			}
			if fields["num-slaves"] != "1" || fields["num-other-sentinels"] != "2" {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		d.Stop()
		return nil, err
	}
	return d, nil
}

// SentinelAddrs returns the Sentinels' addresses, for a FailoverClient.
func (d *Sentinel) SentinelAddrs() []string {
	addrs := make([]string, len(d.Sentinels))
	for i, s := range d.Sentinels {
		addrs[i] = s.Addr()
	}
	return addrs
}

// Master returns the data server that the Sentinels name as master now.
func (d *Sentinel) Master(ctx context.Context) (*Server, error) {
	for _, s := range d.Sentinels {
		text, err := Do(ctx, s.Addr(), "SENTINEL", "get-master-addr-by-name", SentinelMaster)
		if err != nil {
			continue
		}
		host, port, _ := strings.Cut(text, "\n")
		for _, data := range d.Data {
			if fmt.Sprintf("%s:%s", host, port) == data.Addr() {
				return data, nil
			}
		}
		return nil, fmt.Errorf("sentinel %s names %s:%s, which is not a server of this deployment", s.Addr(), host, port)
	}
	return nil, fmt.Errorf("no Sentinel answers")
}

// WaitFailover waits until every Sentinel names a master other than old, and
// that server reports the master role.
func (d *Sentinel) WaitFailover(old *Server, timeout time.Duration) (*Server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Second)
	defer cancel()
	var promoted *Server
	err := waitFor(timeout, "the Sentinels promote a new master", func() (bool, error) {
		for _, s := range d.Sentinels {
			text, err := Do(ctx, s.Addr(), "SENTINEL", "get-master-addr-by-name", SentinelMaster)
			if err != nil {
				return false, err
			}
			if strings.ReplaceAll(text, "\n", ":") == old.Addr() {
				return false, nil
			}
		}
		m, err := d.Master(ctx)
		if err != nil {
			return false, err
		}
		role, err := Info(ctx, m.Addr(), "role")
		if err != nil || role != "master" {
			return false, err
		}
		promoted = m
		return true, nil
	})
	return promoted, err
}

func (d *Sentinel) masterFields(ctx context.Context, addr string) (map[string]string, error) {
	text, err := Do(ctx, addr, "SENTINEL", "master", SentinelMaster)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(text, "\n")
	fields := make(map[string]string, len(lines)/2)
	for i := 0; i+1 < len(lines); i += 2 {
		fields[lines[i]] = lines[i+1]
	}
	return fields, nil
}

// Stop kills every process and removes their directories.
func (d *Sentinel) Stop() {
	for _, s := range d.Sentinels {
		s.Stop()
	}
	for _, s := range d.Data {
		s.Stop()
	}
}

// WaitReplica waits until s (an old master started again as a replica) is in
// sync with the current master.
func (d *Sentinel) WaitReplica(s *Server, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Second)
	defer cancel()
	return waitFor(timeout, "the old master is a replica in sync", func() (bool, error) {
		role, err := Info(ctx, s.Addr(), "role")
		if err != nil || role != "slave" {
			return false, err
		}
		if link, err := Info(ctx, s.Addr(), "master_link_status"); err != nil || link != "up" {
			return false, err
		}
		// The Sentinels need not have noticed yet: while the master is down
		// they refresh what they know of its replicas every second.
		return true, nil
	})
}
