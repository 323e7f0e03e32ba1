#!/usr/bin/env bash
# Checks a built .deb's file list (dpkg-deb -c) and conffiles against what the package must
# hold. Usage: scripts/check-deb.sh [target/debian/jobvisor_*.deb]
set -euo pipefail
cd "$(dirname "$0")/.."

deb="${1:-$(ls -t target/debian/jobvisor_*.deb | head -1)}"
listing=$(dpkg-deb -c "$deb")

expected=(
  "-rwxr-xr-x ./usr/bin/jobvisor"
  "-rw-r--r-- ./etc/jobvisor/config.yaml"
  "-rw-r--r-- ./usr/lib/systemd/system/jobvisor.service"
  "-rw-r--r-- ./usr/lib/tmpfiles.d/jobvisor.conf"
  "-rw-r--r-- ./usr/lib/sysusers.d/jobvisor.conf"
  "-rw-r--r-- ./usr/share/man/man1/jobvisor.1.gz"
  "-rw-r--r-- ./usr/share/man/man1/jobvisor-daemon.1.gz"
  "-rw-r--r-- ./usr/share/man/man1/jobvisor-get.1.gz"
  "-rw-r--r-- ./usr/share/bash-completion/completions/jobvisor"
  "-rw-r--r-- ./usr/share/zsh/vendor-completions/_jobvisor"
  "-rw-r--r-- ./usr/share/fish/vendor_completions.d/jobvisor.fish"
  "-rwxr-xr-x ./usr/share/jobvisor/images/throw-dice.sh"
  "-rw-r--r-- ./usr/share/doc/jobvisor/README.md"
  "-rw-r--r-- ./usr/share/doc/jobvisor/copyright"
)
missing=0
for want in "${expected[@]}"; do
  mode=${want%% *}
  path=${want#* }
  # dpkg-deb -c: MODE OWNER/GROUP SIZE DATE TIME PATH
  if ! awk -v m="$mode" -v p="$path" '$1 == m && $6 == p { found = 1 } END { exit !found }' <<<"$listing"; then
    echo "error: $deb lacks $path (mode $mode)" >&2
    missing=1
  fi
done
# Nothing may be owned by anyone but root.
if awk '$2 != "0/0" { print; bad = 1 } END { exit !bad }' <<<"$listing" >&2; then
  echo "error: files not owned by root:root in $deb" >&2
  missing=1
fi
if ! dpkg-deb -f "$deb" Package | grep -qx jobvisor; then
  echo "error: $deb is not the jobvisor package" >&2; missing=1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -e "$deb" "$tmp"
if ! grep -qx /etc/jobvisor/config.yaml "$tmp/conffiles"; then
  echo "error: /etc/jobvisor/config.yaml is not a conffile in $deb" >&2; missing=1
fi
for script in postinst prerm postrm; do
  [ -f "$tmp/$script" ] || { echo "error: $deb has no $script" >&2; missing=1; }
done
[ "$missing" = 0 ] || exit 1
echo "$deb: $(wc -l <<<"$listing") entries, all expected paths present"
