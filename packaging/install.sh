#!/bin/sh
# Install jobvisor from a built checkout, without a .deb.
#
#   cargo build --release --locked
#   sudo sh packaging/install.sh
#
# Installs:
#   target/release/jobvisor        -> $PREFIX/bin/jobvisor (PREFIX defaults to /usr/local)
#   packaging/systemd/jobvisor.service  -> $UNITDIR/jobvisor.service (ExecStart rewritten)
#   packaging/systemd/jobvisor.tmpfile  -> $TMPFILESDIR/jobvisor.conf
#   packaging/systemd/jobvisor.sysusers -> $SYSUSERSDIR/jobvisor.conf
#   packaging/images/*.sh          -> $PREFIX/share/jobvisor/images/ (the built-in image
#                                     aliases' scripts, to read; the daemon embeds its own)
#   config/jobvisor.yaml           -> /etc/jobvisor/config.yaml (only if absent)
# then runs systemd-sysusers, systemd-tmpfiles --create and systemctl daemon-reload.
# It never enables or starts the service; it prints how to.
#
# Environment:
#   PREFIX       binary goes to $PREFIX/bin, scripts to $PREFIX/share (default /usr/local)
#   BINARY       the built binary (default <checkout>/target/release/jobvisor)
#   UNITDIR      default /usr/local/lib/systemd/system
#   TMPFILESDIR  default /usr/local/lib/tmpfiles.d
#   SYSUSERSDIR  default /usr/local/lib/sysusers.d
#   DESTDIR      stage everything under this directory instead of /. The group and
#                directories are then created there (--root=$DESTDIR), and systemctl
#                is not called.

set -eu

die() {
    printf 'install.sh: error: %s\n' "$*" >&2
    exit 1
}
say() {
    printf '%s\n' "$*"
}
have() {
    command -v "$1" >/dev/null 2>&1
}

# The checkout is the parent of the directory holding this script.
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd) || die "cannot find the script's directory"
top=$(dirname -- "$here")

PREFIX=${PREFIX:-/usr/local}
BINARY=${BINARY:-$top/target/release/jobvisor}
UNITDIR=${UNITDIR:-/usr/local/lib/systemd/system}
TMPFILESDIR=${TMPFILESDIR:-/usr/local/lib/tmpfiles.d}
SYSUSERSDIR=${SYSUSERSDIR:-/usr/local/lib/sysusers.d}
DESTDIR=${DESTDIR:-}
BINDIR=$PREFIX/bin
IMAGESDIR=$PREFIX/share/jobvisor/images
CONFDIR=/etc/jobvisor

unit_src=$top/packaging/systemd/jobvisor.service
tmpfile_src=$top/packaging/systemd/jobvisor.tmpfile
sysusers_src=$top/packaging/systemd/jobvisor.sysusers
config_src=$top/config/jobvisor.yaml
images_src=$top/packaging/images

# ---- checks: fail before touching anything ----------------------------------------

[ "$(id -u)" -eq 0 ] || die "must be run as root, e.g.: sudo sh $0"

case $PREFIX in
    /*) ;;
    *) die "PREFIX must be an absolute path, got: $PREFIX" ;;
esac
# The path goes into ExecStart= (via sed): allow only plain path characters.
case $PREFIX in
    *[!A-Za-z0-9/._+-]*) die "PREFIX may contain only A-Z a-z 0-9 / . _ + -, got: $PREFIX" ;;
esac
for d in "$UNITDIR" "$TMPFILESDIR" "$SYSUSERSDIR"; do
    case $d in
        /*) ;;
        *) die "directories must be absolute paths, got: $d" ;;
    esac
done
case $DESTDIR in
    '' | /*) ;;
    *) die "DESTDIR must be an absolute path, got: $DESTDIR" ;;
esac

[ -e "$BINARY" ] || die "no built binary at $BINARY (run: cargo build --release --locked)"
if [ ! -f "$BINARY" ] || [ ! -x "$BINARY" ]; then
    die "$BINARY is not an executable file"
fi
for f in "$unit_src" "$tmpfile_src" "$sysusers_src" "$config_src" \
    "$images_src/throw-dice.sh" "$images_src/random-error.sh" \
    "$images_src/bash-entrypoint.sh"; do
    [ -f "$f" ] || die "missing $f (run this script from a jobvisor checkout)"
done

# ---- install files -----------------------------------------------------------------

tmp=''
cleanup() {
    if [ -n "$tmp" ]; then rm -f "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM

# put MODE SRC DST: copy to a temporary name next to DST, then rename over DST, so a
# running binary or a reading systemd never sees a half-written file.
put() {
    mkdir -p "$(dirname -- "$3")"
    tmp=$(dirname -- "$3")/.$(basename -- "$3").new.$$
    cp -- "$2" "$tmp"
    chmod "$1" "$tmp"
    mv -f -- "$tmp" "$3"
    tmp=''
    say "installed $3"
}

put 0755 "$BINARY" "$DESTDIR$BINDIR/jobvisor"

unit_tmp=$(mktemp)
sed "s|^ExecStart=/usr/bin/jobvisor |ExecStart=$BINDIR/jobvisor |" "$unit_src" >"$unit_tmp" \
    || { rm -f "$unit_tmp"; die "cannot rewrite ExecStart in $unit_src"; }
if ! grep -q "^ExecStart=$BINDIR/jobvisor daemon\$" "$unit_tmp"; then
    rm -f "$unit_tmp"
    die "ExecStart=/usr/bin/jobvisor daemon not found in $unit_src"
fi
put 0644 "$unit_tmp" "$DESTDIR$UNITDIR/jobvisor.service"
rm -f "$unit_tmp"

for script in "$images_src"/*.sh; do
    put 0755 "$script" "$DESTDIR$IMAGESDIR/$(basename -- "$script")"
done

put 0644 "$tmpfile_src" "$DESTDIR$TMPFILESDIR/jobvisor.conf"
put 0644 "$sysusers_src" "$DESTDIR$SYSUSERSDIR/jobvisor.conf"

if [ -e "$DESTDIR$CONFDIR/config.yaml" ]; then
    say "kept existing $DESTDIR$CONFDIR/config.yaml (the default is $config_src)"
else
    put 0644 "$config_src" "$DESTDIR$CONFDIR/config.yaml"
fi

# ---- group and directories ---------------------------------------------------------

# The group must exist before systemd-tmpfiles, which gives it manifests.d.
if [ -n "$DESTDIR" ]; then
    have systemd-sysusers || die "systemd-sysusers is required with DESTDIR"
    systemd-sysusers --root="$DESTDIR" "$DESTDIR$SYSUSERSDIR/jobvisor.conf"
elif have systemd-sysusers; then
    systemd-sysusers "$SYSUSERSDIR/jobvisor.conf"
elif getent group jobvisor >/dev/null 2>&1; then
    :
elif have groupadd; then
    groupadd --system jobvisor
else
    die "neither systemd-sysusers nor groupadd found: create the group 'jobvisor' yourself"
fi
say "group jobvisor is present"

if have systemd-tmpfiles; then
    if [ -n "$DESTDIR" ]; then
        systemd-tmpfiles --create --root="$DESTDIR" "$DESTDIR$TMPFILESDIR/jobvisor.conf"
    else
        systemd-tmpfiles --create "$TMPFILESDIR/jobvisor.conf"
    fi
    say "created the directories listed in $TMPFILESDIR/jobvisor.conf"
else
    say "warning: systemd-tmpfiles not found; directories from $TMPFILESDIR/jobvisor.conf were not created" >&2
fi

# ---- systemd -----------------------------------------------------------------------

if [ -z "$DESTDIR" ] && [ -f /usr/lib/systemd/system/jobvisor.service ] \
    && [ "$UNITDIR" != /usr/lib/systemd/system ]; then
    say "note: the jobvisor .deb's unit is also installed; $UNITDIR/jobvisor.service takes precedence over it"
fi

# /run/systemd/system exists only when systemd is PID 1 (sd_booted(3)).
booted=no
if [ -z "$DESTDIR" ] && have systemctl && [ -d /run/systemd/system ]; then
    booted=yes
    systemctl daemon-reload
    say "systemd reloaded its units"
fi

say ""
if [ "$booted" = yes ]; then
    if systemctl is-active --quiet jobvisor.service; then
        say "jobvisor is running the old binary. To switch to the new one (running pods are"
        say "stopped gracefully first):"
        say "  systemctl restart jobvisor"
    else
        say "To start jobvisor now and at every boot:"
        say "  systemctl enable --now jobvisor"
    fi
else
    say "systemd is not running here, so nothing was reloaded or started. On a systemd host:"
    say "  systemctl daemon-reload && systemctl enable --now jobvisor"
    say "Without systemd, run the daemon yourself: $BINDIR/jobvisor daemon"
fi
say "Drop Job manifests into $CONFDIR/manifests.d/. To let USER run the CLI:"
say "  usermod -aG jobvisor USER   (then log in again)"
