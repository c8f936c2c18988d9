package kiwicache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/DataDog/datadog-go/v5/statsd"
)

// The DogStatsD adapter sends what the Python library sends: counter
// kiwicache, tags name:NAME (as 0.4.5) and status:STATUS. Checked on the wire.
func TestDogStatsDOnTheWire(t *testing.T) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client, err := statsd.New(conn.LocalAddr().String(), statsd.WithoutTelemetry())
	if err != nil {
		t.Fatal(err)
	}

	mr, rdb := newMiniredis(t)
	fail := false
	l := newCountingLoader[string, item](func(context.Context) (map[string]item, error) {
		if fail {
			return nil, errors.New("source down")
		}
		return twoItems, nil
	})
	c := mustNew(t, "Airlines", rdb, l, WithMetrics(&DogStatsD{Client: client}))
	if err := c.Refill(t.Context()); err != nil { // success
		t.Fatal(err)
	}
	fail = true
	c.Refill(t.Context()) // load_error
	mr.SetError("LOADING")
	c.Refill(t.Context()) // redis_error
	client.Close()        // flushes

	got := readPackets(t, conn)
	for _, want := range []string{
		"kiwicache:1|c|#name:Airlines,status:success",
		"kiwicache:1|c|#name:Airlines,status:load_error",
		"kiwicache:1|c|#name:Airlines,status:redis_error",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("statsd lines %q lack %q", got, want)
		}
	}
}

func readPackets(t *testing.T, conn net.PacketConn) []string {
	var lines []string
	buf := make([]byte, 65536)
	for {
		conn.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			return lines
		}
		lines = append(lines, strings.Split(strings.TrimSpace(string(buf[:n])), "\n")...)
	}
}

// The counter's name is configurable, and so is the name tag: 0.4.5's name:
// by default, 0.5.0's cache_name: on request.
func TestDogStatsDName(t *testing.T) {
	rec := &incrRecorder{}
	(&DogStatsD{Client: rec, Name: "legacy.cache"}).Count("Fx", StatusSuccess)
	(&DogStatsD{Client: rec}).Count("Fx", StatusLoadError)
	(&DogStatsD{Client: rec, NameTag: NameTag050}).Count("Fx", StatusRedisError)
	want := []string{
		"legacy.cache [name:Fx status:success]",
		"kiwicache [name:Fx status:load_error]",
		"kiwicache [cache_name:Fx status:redis_error]",
	}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("Incr calls = %q, want %q", rec.calls, want)
	}
}

type incrRecorder struct {
	statsd.NoOpClient
	calls []string
}

func (r *incrRecorder) Incr(name string, tags []string, rate float64) error {
	r.calls = append(r.calls, fmt.Sprint(name, " ", tags))
	if rate != 1 {
		r.calls = append(r.calls, fmt.Sprint("rate ", rate))
	}
	return nil
}

// A DogStatsD without a Client (or a nil one) sends nothing and never panics,
// neither when called directly nor on a cache's load path.
func TestDogStatsDWithoutClient(t *testing.T) {
	var nilAdapter *DogStatsD
	nilAdapter.Count("Fx", StatusSuccess)
	(&DogStatsD{}).Count("Fx", StatusSuccess)

	_, rdb := newMiniredis(t)
	l := newCountingLoader[string, item](staticData(twoItems))
	c := mustNew(t, "NoClient", rdb, l, WithMetrics(&DogStatsD{}))
	if err := c.Refill(t.Context()); err != nil {
		t.Fatal(err)
	}
}
