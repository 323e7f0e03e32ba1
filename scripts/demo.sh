#!/usr/bin/env bash
# From a fresh clone to a running daemon: builds jobvisor, puts the examples in
# ./demo/manifests and runs `jobvisor daemon --root ./demo` in the foreground (Ctrl-C stops it).
# In another terminal:  ./target/release/jobvisor --root ./demo get jobs
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "Rust is not installed; installing it with rustup (https://rustup.rs)..." >&2
    command -v curl >/dev/null 2>&1 || { echo "error: need curl: sudo apt-get install -y curl build-essential" >&2; exit 1; }
    command -v cc >/dev/null 2>&1 || { echo "error: need a C linker: sudo apt-get install -y build-essential" >&2; exit 1; }
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi

cargo build --release --locked
mkdir -p demo/manifests
cp -n examples/*.yaml demo/manifests/ 2>/dev/null || true
echo "jobvisor: watching demo/manifests; try: ./target/release/jobvisor --root ./demo get jobs" >&2
exec ./target/release/jobvisor daemon --root ./demo
