#!/usr/bin/env python3
"""Python kiwi-cache 0.4.5's reload of a changed record, timed: the reference
that `make bench` measures Go against, in the same run, on the same record
and the same redis-server.

KiwiCache.reload_from_cache() in 0.4.5 is a redis GET of the record,
simplejson.loads of it (kw.cache.json.loads is simplejson.loads), a check
that its members are exactly data and timestamp, and the data dict kept as
the snapshot. This does exactly that, REPS times:

    REDIS_URL=redis://127.0.0.1:6379/0 python3 bench/python_reload.py KEY REPS

It prints one JSON line: the key, the record's bytes and items, the reps, the
median and least time of one reload in ms, and the process's peak resident
memory in MB. Needs python3 with the redis and simplejson modules (Debian:
python3-redis, python3-simplejson).
"""
import json
import os
import resource
import statistics
import sys
import time

import redis
import simplejson


def main(key, reps):
    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    times, size, items = [], 0, 0
    for _ in range(reps):
        start = time.perf_counter()
        value = client.get(key)
        record = simplejson.loads(value)
        if set(record.keys()) != {"data", "timestamp"}:
            sys.exit("malformed record")
        snapshot = record["data"]
        times.append((time.perf_counter() - start) * 1000)
        size, items = len(value), len(snapshot)
        del value, record  # the snapshot stays until the next one replaces it, as in 0.4.5
    print(json.dumps({
        "key": key, "bytes": size, "items": items, "reps": reps,
        "median_ms": statistics.median(times), "min_ms": min(times),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]))
