# make test     vet and the whole test suite with the race detector. Integration
#               tests use REDIS_URL, or a redis-server they start from PATH.
# make example  the airlines example: a few lookups through the cache (an
#               embedded miniredis unless REDIS_URL is set).
# make bench    the benchmarks, benchstat-friendly, into bench.txt.

GO ?= go
BENCH ?= .
BENCHCOUNT ?= 6

.PHONY: test example bench

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 8m ./...

example:
	$(GO) run ./examples/airlines

bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -count $(BENCHCOUNT) -timeout 5m . | tee bench.txt
