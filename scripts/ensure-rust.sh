# Sourced by demo.sh and test.sh: puts cargo on PATH, installing Rust with rustup on a
# fresh machine (Debian's own cargo is too old for this edition).
if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "Rust is not installed; installing it with rustup (https://rustup.rs)..." >&2
    command -v curl >/dev/null 2>&1 || { echo "error: need curl: sudo apt-get install -y curl build-essential" >&2; exit 1; }
    command -v cc >/dev/null 2>&1 || { echo "error: need a C linker: sudo apt-get install -y build-essential" >&2; exit 1; }
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal --component clippy,rustfmt
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
fi
