# make test     vet and the whole test suite with the race detector. Integration
#               tests use REDIS_URL, or a redis-server they start from PATH.
# make example  the airlines example: a few lookups through the cache (an
#               embedded miniredis unless REDIS_URL is set). It lists the
#               packages it compiles on a cold cache (go run -v), so the first
#               run shows what it is doing. The other examples (service, sqlite,
#               refill): go run ./examples/NAME.
# make soak     a randomized mix of faults for SOAK (60s) on a real
#               redis-server, with readers checking every value.
# make bench    the benchmarks of BENCHMARKS.md, benchstat-friendly: reloads
#               side by side with the Python library's (same run, same record,
#               same redis-server, started as the tests start it), memory,
#               decode and refill into bench.txt; Get against other caches
#               (bench/reads) into bench-reads.txt; then the tables.
#               BIG=1 adds the 1,000,000-item record (100 MB; minutes).
#               Compare two runs with:
#               go run golang.org/x/perf/cmd/benchstat@latest old.txt new.txt
# make plot     BENCHMARKS.svg (reload time against record size, Go and
#               Python, log-log) from RESULTS (bench.txt by default).
# make fuzz     each fuzz target for FUZZTIME: the record decoder, its
#               agreement with encoding/json, its pieces in parallel.
# make mutate   mutation testing of the data-path files (tools/mutate): plants
#               one small bug at a time, runs the tests that reach it, prints
#               the score per file. Minutes per file; not part of make test.
#               MUTATE_FILES=cache.go for one file, MUTATE_FLAGS=-survivors
#               to run again only what the last run did not catch.

GO ?= go
BENCH ?= .
BENCHCOUNT ?= 6
BENCHTIME ?= 500ms
BENCHSIZES ?= 1000,10000,100000$(if $(BIG),$(comma)1000000)
RESULTS ?= bench.txt
FUZZTIME ?= 60s
comma := ,
SOAK ?= 60s
MUTATE_FILES ?=
MUTATE_FLAGS ?=

.PHONY: test example bench plot fuzz soak mutate

# Tests that skip for want of a server (redis-server, PostgreSQL) say so in
# one line per group, collected in a file: go test shows a passing package's
# output only with -v.
test:
	$(GO) vet ./...
	@report=$$(mktemp); echo "$(GO) test -race -count=1 -timeout 8m ./..."; \
	KIWICACHE_SKIP_REPORT=$$report $(GO) test -race -count=1 -timeout 8m ./...; status=$$?; \
	cat $$report >&2; rm -f $$report; exit $$status

example:
	@echo "make example: go run ./examples/airlines. The first run downloads and compiles the library, go-redis"
	@echo "and miniredis (about half a minute on 2 cores), listing each package it compiles; later runs start at once."
	$(GO) run -v ./examples/airlines

bench:
	KIWICACHE_BENCH_SIZES=$(BENCHSIZES) $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem \
		-benchtime $(BENCHTIME) -count $(BENCHCOUNT) -timeout 90m . | tee bench.txt
	cd bench/reads && $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) \
		-count $(BENCHCOUNT) . | tee ../../bench-reads.txt
	@echo
	$(GO) run ./bench/report bench.txt bench-reads.txt

plot:
	$(GO) run ./bench/report -svg BENCHMARKS.svg $(RESULTS)

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeMatchesEncodingJSON$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzParallelDecode$$' -fuzztime $(FUZZTIME) .

soak:
	KIWICACHE_SOAK=$(SOAK) $(GO) test -race -count=1 -run '^TestSoak$$' -v -timeout 10m .

# make bench-push  propagation of a refill through push notifications: a
#                  writer process and PUSH_READERS (20) reader processes with
#                  ReloadTTL 1h; p50/p99/max from the write to serving.
# make scaling     what a fleet of FLEET (50) instances costs Redis, unchanged
#                  and after a change of a 10 MB record (SCALING.md).
PUSH_READERS ?= 20
FLEET ?= 50

.PHONY: bench-push scaling

bench-push:
	$(GO) run ./bench/propagation -readers $(PUSH_READERS) -rounds 50
	$(GO) run ./bench/propagation -readers $(PUSH_READERS) -rounds 50 -listen publish
	$(GO) run ./bench/propagation -readers $(PUSH_READERS) -rounds 20 -items 10000

scaling:
	$(GO) run ./bench/fleet -instances $(FLEET) -period 1s -periods 10 -change=false
	$(GO) run ./bench/fleet -instances $(FLEET) -period 1s -periods 10 -change=false -partitions 10
	$(GO) run ./bench/fleet -instances $(FLEET) -period 1s -periods 10 -change=false -gzip
	$(GO) run ./bench/fleet -instances $(FLEET) -period 1h -periods 0
	$(GO) run ./bench/fleet -instances $(FLEET) -period 1h -periods 0 -spread 5s
	$(GO) run ./bench/fleet -instances $(FLEET) -period 1h -periods 0 -partitions 10
	$(GO) run ./bench/fleet -instances $(FLEET) -period 1h -periods 0 -gzip

mutate:
	$(GO) -C tools/mutate run . -dir $(CURDIR) $(MUTATE_FLAGS) $(MUTATE_FILES)
