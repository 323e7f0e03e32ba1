#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
#   formatting · clippy · controller/manifest purity · examples against the Kubernetes schema
#   · host prerequisites of the examples · unit tests (controllers table-driven, fake clock) · integration tests (real daemon).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

. scripts/ensure-rust.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --all-targets --locked -- -D warnings

step "controllers and manifest parsing stay pure (no tokio, std::fs, std::process)"
impure=0
for f in $(find src/controller src/manifest -name '*.rs'); do
  # Code only: stop at the test module, skip comments.
  if sed '/^#\[cfg(test)\]/,$d' "$f" | grep -nE '\btokio\b|std::fs|std::process' | grep -vE '^[0-9]+:\s*//'; then
    echo "  in $f" >&2; impure=1
  fi
done
if [ "$impure" = 1 ]; then
  echo "error: src/controller and src/manifest must not do I/O (see STYLE: controllers decide, the runtime acts)" >&2
  exit 1
fi

step "examples pass kubernetes-validate --strict"
validator=kubernetes-validate
if ! command -v "$validator" >/dev/null 2>&1; then
  # A private venv: Debian's system Python refuses global pip installs (PEP 668).
  venv=target/tools-venv
  [ -x "$venv/bin/kubernetes-validate" ] || {
    python3 -m venv "$venv" && "$venv/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate
  } || { echo "error: need python3-venv to install kubernetes-validate: sudo apt-get install -y python3-venv" >&2; exit 1; }
  validator="$venv/bin/kubernetes-validate"
fi
"$validator" --strict examples/*.yaml

step "host programs the documentation examples run (perl's bignum computes pi to 2000 places)"
# examples/job.yaml runs `perl -Mbignum=bpi -wle 'print bpi(2000)'`. Debian 12's perl 5.36
# ships Math::BigInt 1.999830, whose bpi dies past about 1000 places ("Can't use an
# undefined value as an ARRAY reference"); Debian's libmath-bigint-perl (1.999838) fixes it.
if ! perl -Mbignum=bpi -e 'bpi(2000)' >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libmath-bigint-perl >/dev/null
  fi
  perl -Mbignum=bpi -e 'bpi(2000)' >/dev/null || {
    echo "error: perl cannot compute bpi(2000): sudo apt-get install -y libmath-bigint-perl" >&2; exit 1; }
fi

step "cargo test"
cargo test --locked --all-targets -- --test-threads="${JOBVISOR_TEST_THREADS:-4}"

step "the .deb: built from the debug binary above, its file list checked"
# A release build would add minutes to every run; the package's contents do not depend on
# the profile. cargo-deb is installed once under target/tools (about 3 minutes, then cached).
scripts/build-deb.sh --profile dev
scripts/check-deb.sh
