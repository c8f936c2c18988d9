#!/bin/sh
# readme-sample.sh runs the sample session of README.md's "Operating it"
# section for real and prints it: a redis-server of its own (on a Unix
# socket, stopped at the end), the records of the refill example, a record
# the Python library wrote (testdata/golden/sql_table.record), then each
# command as the README shows it, with what it printed.
#
#	cmd/kiwicache/readme-sample.sh         print the session
#	cmd/kiwicache/readme-sample.sh -w      and replace the one in README.md
set -eu
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
redis-server --port 0 --unixsocket "$tmp/redis.sock" --save '' --appendonly no --dir "$tmp" >/dev/null &
server=$!
trap 'kill $server; wait $server 2>/dev/null; rm -rf "$tmp"' EXIT
export REDIS_URL="unix://$tmp/redis.sock"
go build -o "$tmp/kiwicache" ./cmd/kiwicache
go build -o "$tmp/refill-example" ./examples/refill
export PATH="$tmp:$PATH"
until redis-cli -s "$tmp/redis.sock" ping >/dev/null 2>&1; do sleep 0.1; done

run_refill() { (cd "$tmp" && refill-example >/dev/null 2>&1); }
run_refill
redis-cli -s "$tmp/redis.sock" -x SET resource:KiwiAirlinesTable <testdata/golden/sql_table.record >/dev/null
redis-cli -s "$tmp/redis.sock" EXPIRE resource:KiwiAirlinesTable 3600 >/dev/null

# run prints a command as typed and what it printed, stdout and stderr.
run() {
	printf '$ %s\n' "$1"
	(cd "$tmp" && sh -c "$1" 2>&1) || true
}

session() {
	run 'kiwicache list'
	run 'kiwicache inspect Airlines'
	run 'kiwicache get KiwiAirlinesTable FR'
	run 'kiwicache keys Airlines:backup'
	run 'kiwicache get Airlines XX; echo $?'
	run 'kiwicache inspect "Weird name"; echo $?'
	run 'kiwicache dump Airlines | sed "s/Wizz Air/Wizz Air Hungary/" > edited.json'
	run 'kiwicache diff Airlines @edited.json; echo $?'
	run 'kiwicache diff Airlines Airlines:backup; echo $?'
	# watch sees the record that the refill example writes meanwhile.
	(cd "$tmp" && kiwicache watch Airlines --count 1 --timeout 1m >watch.out 2>&1) &
	watch=$!
	until grep -q current "$tmp/watch.out" 2>/dev/null; do sleep 0.1; done
	run_refill
	wait $watch
	printf '$ %s\n' 'kiwicache watch Airlines --count 1    # meanwhile, the refill example runs'
	cat "$tmp/watch.out"
	run 'kiwicache invalidate Airlines --yes'
	run 'kiwicache --json inspect Airlines:backup'
}

if [ "${1:-}" != "-w" ]; then
	session
	exit
fi
session >"$tmp/session"
# Replace the lines between the README's markers.
awk -v session="$tmp/session" '
	/^<!-- kiwicache sample: begin/ { print; print "```"; while ((getline line < session) > 0) print line; print "```"; skip = 1; next }
	/^<!-- kiwicache sample: end/ { skip = 0 }
	!skip { print }
' README.md >"$tmp/README.md"
cp "$tmp/README.md" README.md
