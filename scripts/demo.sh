#!/usr/bin/env bash
# From a fresh clone to a running daemon: builds jobvisor, puts the examples in
# ./demo/manifests and runs `jobvisor daemon --root ./demo` in the foreground (Ctrl-C stops it).
# In another terminal:  ./target/release/jobvisor --root ./demo get jobs
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/ensure-rust.sh

cargo build --release --locked
mkdir -p demo/manifests
cp -n examples/*.yaml demo/manifests/ 2>/dev/null || true
echo "jobvisor: watching demo/manifests; try: ./target/release/jobvisor --root ./demo get jobs" >&2
exec ./target/release/jobvisor daemon --root ./demo
