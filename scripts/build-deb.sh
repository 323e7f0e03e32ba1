#!/usr/bin/env bash
# Builds the .deb with cargo-deb: target/debian/jobvisor_<version>-1_<arch>.deb.
#   scripts/build-deb.sh            release build (what to ship)
#   scripts/build-deb.sh --profile dev
#                                   from the debug binary `cargo test` already built (CI: the
#                                   package's contents are checked without a release build)
# The man pages and shell completions come from the binary itself (`jobvisor generate-man`,
# `jobvisor completion SHELL`), so they match its clap definition.
set -euo pipefail
cd "$(dirname "$0")/.."

profile=release
if [ "${1:-}" = "--profile" ]; then profile="$2"; fi
case "$profile" in
  dev) bindir=target/debug ;;
  *) bindir="target/$profile" ;;
esac

# cargo-deb pinned, installed once under target/tools (kept with the build cache).
CARGO_DEB_VERSION=3.8.0
cargo_deb=target/tools/bin/cargo-deb
if ! "$cargo_deb" --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --root target/tools
fi

cargo build --locked --profile "$profile" --bin jobvisor
bin="$bindir/jobvisor"

assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/man" "$assets/completions"
"$bin" generate-man "$assets/man" >/dev/null
gzip -9n "$assets"/man/*.1
"$bin" completion bash > "$assets/completions/jobvisor"
"$bin" completion zsh > "$assets/completions/_jobvisor"
"$bin" completion fish > "$assets/completions/jobvisor.fish"

# --no-build: built above. cargo-deb maps target/release/ in the assets to the profile's dir.
"$cargo_deb" --no-build --locked --profile "$profile" --fast
