#!/usr/bin/env bash
# Alternates two steward binaries on `bench jobs` (SQLite), N rounds, printing the processed rate and
# the CPU (user, system) of each run, each from a fresh temporary directory. The label of a binary is
# the directory two levels above it (`/tmp/old/release/steward` is `old`).
# Usage: bench/pair.sh OLD_BINARY NEW_BINARY [ROUNDS]
set -u
OLD=$1; NEW=$2; N=${3:-8}
for i in $(seq 1 $N); do
  for b in "$OLD" "$NEW"; do
    d=$(mktemp -d); cd "$d"
    out=$( { /usr/bin/time -f "CPU %U %S" "$b" bench jobs --store sqlite --probes 10 --jobs 300000; } 2>&1 )
    rate=$(echo "$out" | grep "^processed:" | grep -Eo "[0-9]+ jobs/s")
    cpu=$(echo "$out" | grep "^CPU")
    echo "round $i $(basename $(dirname $(dirname $b))) $rate $cpu"
    cd /; rm -rf "$d"
  done
done
