package skipreport

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Skipped tests are reported once per group, counted, with their reason;
// Report appends the lines to the file KIWICACHE_SKIP_REPORT names.
func TestReport(t *testing.T) {
	t.Cleanup(func() { groups = map[string]*group{} })
	for _, name := range []string{"A", "B", "C", "D", "E"} {
		t.Run(name, func(t *testing.T) { Skip(t, "real redis-server", "redis-server is not installed") })
	}
	t.Run("F", func(t *testing.T) { Skip(t, "PostgreSQL", "initdb is not installed") })

	file := filepath.Join(t.TempDir(), "skipped")
	t.Setenv(EnvFile, file)
	os.WriteFile(file, []byte("SKIP other/pkg: ...\n"), 0o644)
	Report("example/pkg")
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want := "SKIP other/pkg: ...\n" +
		"SKIP example/pkg: 1 PostgreSQL tests (TestReport/F): initdb is not installed\n" +
		"SKIP example/pkg: 5 real redis-server tests (TestReport/A, TestReport/B, TestReport/C, TestReport/D and 1 more): redis-server is not installed\n"
	if string(got) != want {
		t.Errorf("report file:\n%s\nwant:\n%s", got, want)
	}
}

// Without skips, Report writes nothing: a run with every server present
// prints what it printed before.
func TestReportNothingSkipped(t *testing.T) {
	file := filepath.Join(t.TempDir(), "skipped")
	t.Setenv(EnvFile, file)
	Report("example/pkg")
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		b, _ := os.ReadFile(file)
		t.Errorf("report file written: %q", strings.TrimSpace(string(b)))
	}
}
