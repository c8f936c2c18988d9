# make test     vet and the whole test suite with the race detector. Integration
#               tests use REDIS_URL, or a redis-server they start from PATH.
# make example  the airlines example: a few lookups through the cache (an
#               embedded miniredis unless REDIS_URL is set).
# make fuzz     the record decoder's fuzz target, for FUZZTIME (60s).
# make soak     a randomized mix of faults for SOAK (60s) on a real
#               redis-server, with readers checking every value.
# make bench    the benchmarks (reloads on a real redis-server, as the tests
#               start it), benchstat-friendly, into bench.txt. Compare two
#               runs with: go run golang.org/x/perf/cmd/benchstat@latest old.txt new.txt
# make mutate   mutation testing of the data-path files (tools/mutate): plants
#               one small bug at a time, runs the tests that reach it, prints
#               the score per file. Minutes per file; not part of make test.
#               MUTATE_FILES=cache.go for one file, MUTATE_FLAGS=-survivors
#               to run again only what the last run did not catch.

GO ?= go
BENCH ?= .
BENCHCOUNT ?= 6
BENCHTIME ?= 500ms
FUZZTIME ?= 60s
SOAK ?= 60s
MUTATE_FILES ?=
MUTATE_FLAGS ?=

.PHONY: test example bench fuzz soak mutate

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 8m ./...

example:
	$(GO) run ./examples/airlines

bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 5m . | tee bench.txt

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) .

soak:
	KIWICACHE_SOAK=$(SOAK) $(GO) test -race -count=1 -run '^TestSoak$$' -v -timeout 10m .

mutate:
	$(GO) -C tools/mutate run . -dir $(CURDIR) $(MUTATE_FLAGS) $(MUTATE_FILES)
