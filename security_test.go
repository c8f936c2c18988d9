package kiwicache

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	testPassword    = "s3cret-requirepass-7f2a"
	testACLPassword = "s3cret-acl-91c4"
)

// AUTH with requirepass and with an ACL user work through the
// caller's client; a wrong password fails with errors and logs that name no
// secret.
func TestRedisAuth(t *testing.T) {
	srv := startTestRedis(t, "--requirepass", testPassword,
		"--user", "kiwi", "on", ">"+testACLPassword, "~resource:*", "~lock:*", "+@all")
	for name, opts := range map[string]*redis.Options{
		"requirepass": {Addr: srv.addr(), Password: testPassword},
		"ACL user":    {Addr: srv.addr(), Username: "kiwi", Password: testACLPassword},
	} {
		t.Run(name, func(t *testing.T) {
			rdb := redis.NewClient(opts)
			defer rdb.Close()
			c := mustNew(t, uniqueName(t), rdb, LoaderFunc[string, item](staticData(twoItems)))
			if v, err := c.Get(t.Context(), "a"); err != nil || v.Name != "one" {
				t.Errorf("Get = %+v, %v", v, err)
			}
		})
	}

	logs := &logBuffer{}
	for name, opts := range map[string]*redis.Options{
		"wrong password": {Addr: srv.addr(), Password: testPassword + "x", MaxRetries: -1},
		"wrong ACL user": {Addr: srv.addr(), Username: "kiwi", Password: testACLPassword + "x", MaxRetries: -1},
	} {
		rdb := redis.NewClient(opts)
		c := mustNew(t, "Secret", rdb, LoaderFunc[string, item](staticData(twoItems)), WithLogger(logs.logger()))
		_, err := c.Get(t.Context(), "a")
		rdb.Close()
		if !errors.Is(err, ErrNoData) || !errors.Is(err, ErrRedis) {
			t.Errorf("%s: Get error = %v, want ErrNoData and ErrRedis", name, err)
		}
		assertNoSecret(t, name+" error", err.Error())
	}
	if !strings.Contains(logs.String(), "WRONGPASS") {
		t.Errorf("the failures were not logged: %s", logs)
	}
	assertNoSecret(t, "logs", logs.String())
}

func assertNoSecret(t *testing.T, where, s string) {
	t.Helper()
	for _, secret := range []string{testPassword, testACLPassword, "s3cret"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s show a secret: %s", where, s)
		}
	}
}

// TLS, with a certificate the test makes, through the caller's
// client; a client that does not trust it fails cleanly.
func TestRedisTLS(t *testing.T) {
	dir := t.TempDir()
	caPool := writeTestCerts(t, dir)
	srv := startTestRedis(t, "--port", "0", "--tls-port", "{port}",
		"--tls-cert-file", filepath.Join(dir, "server.crt"), "--tls-key-file", filepath.Join(dir, "server.key"),
		"--tls-ca-cert-file", filepath.Join(dir, "ca.crt"), "--tls-auth-clients", "no")

	rdb := redis.NewClient(&redis.Options{Addr: srv.addr(), TLSConfig: &tls.Config{RootCAs: caPool, ServerName: "127.0.0.1"}})
	defer rdb.Close()
	c := mustNew(t, uniqueName(t), rdb, LoaderFunc[string, item](staticData(twoItems)))
	if v, err := c.Get(t.Context(), "a"); err != nil || v.Name != "one" {
		t.Fatalf("Get over TLS = %+v, %v", v, err)
	}
	if n := must(rdb.Exists(t.Context(), c.Key()).Result()); n != 1 {
		t.Error("no record written over TLS")
	}

	untrusting := redis.NewClient(&redis.Options{Addr: srv.addr(), TLSConfig: &tls.Config{ServerName: "127.0.0.1"}, MaxRetries: -1})
	defer untrusting.Close()
	c2 := mustNew(t, uniqueName(t), untrusting, LoaderFunc[string, item](staticData(twoItems)))
	if _, err := c2.Get(t.Context(), "a"); !errors.Is(err, ErrRedis) || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Get with an untrusted certificate: %v, want a Redis error about the certificate", err)
	}
}

// writeTestCerts writes a CA and a server certificate for 127.0.0.1 into dir.
func writeTestCerts(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) }
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caKey := newKey()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kiwicache test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER := must(x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey))
	write("ca.crt", "CERTIFICATE", caDER)

	serverKey := newKey()
	server := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	write("server.crt", "CERTIFICATE", must(x509.CreateCertificate(rand.Reader, server, ca, &serverKey.PublicKey, caKey)))
	write("server.key", "EC PRIVATE KEY", must(x509.MarshalECPrivateKey(serverKey)))

	pool := x509.NewCertPool()
	pool.AddCert(must(x509.ParseCertificate(caDER)))
	return pool
}
