#!/bin/bash
# Install everything qemu-dseg needs to build and test on Debian 12, from
# Debian's own packages.  Idempotent and quiet when all is present.
#
# Apt sources are derived from the machine's existing configuration: the
# mirror that serves the base suite also serves <codename>-backports (for
# meson >= 1.5 and python3-pycotap) and the deb-src entries of the suite we
# take QEMU's source package from.
set -euo pipefail

UPSTREAM_SUITE=${QEMU_DSEG_UPSTREAM_SUITE:-trixie}
SRC_LIST=/etc/apt/sources.list.d/qemu-dseg.sources

# Packages from the base suite.
BASE_PKGS=(
    build-essential gcc-multilib ninja-build pkg-config ccache
    libglib2.0-dev libpixman-1-dev libfdt-dev zlib1g-dev
    python3 python3-venv flex bison
    dpkg-dev seabios cpio kmod xz-utils zstd gdb clang
    python3-matplotlib python3-sphinx libslirp-dev
    libmemcached-tools redis-tools
    slurmctld slurmd slurm-client munge
)
# Packages taken from backports where the base suite's are too old.
BACKPORT_PKGS=(meson python3-pycotap)
MESON_MIN=1.5
# How long apt waits for its locks when another program (an unattended
# upgrade, another apt) holds them.
LOCK_TIMEOUT=600

say() { printf 'setup: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || SUDO=sudo
SUDO=${SUDO:-}

. /etc/os-release
codename=${VERSION_CODENAME:?cannot tell the Debian codename}

# --- apt sources --------------------------------------------------------
# Print "URI<TAB>Signed-By" for the first entry that serves the base suite,
# from deb822 .sources files or one-line .list files.
base_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -e "$f" ] || continue
        awk -v suite="$codename" '
            function flush() {
                if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uri != "") {
                    print uri "\t" key; found = 1; exit
                }
                types = suites = uri = key = ""
            }
            /^[ \t]*$/ { flush(); next }
            /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
            /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
            /^URIs:/ { uri = $2 }
            /^Signed-By:/ { key = $2 }
            END { if (!found) flush() }
        ' "$f" | head -n 1
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -e "$f" ] || continue
        awk -v suite="$codename" '
            $1 == "deb" {
                i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) { print $i "\t"; exit }
            }' "$f"
    done
}

write_sources() {
    local line uri key
    line=$(base_mirror | head -n 1)
    [ -n "$line" ] || die "no apt source for '$codename' found in /etc/apt; cannot derive backports and deb-src entries"
    uri=${line%%$'\t'*}
    key=${line#*$'\t'}
    {
        echo "# Written by qemu-dseg scripts/setup.sh from the $codename entry."
        printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\n' \
            "$uri" "$codename"
        [ -n "$key" ] && printf 'Signed-By: %s\n' "$key"
        echo
        printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\n' \
            "$uri" "$UPSTREAM_SUITE"
        [ -n "$key" ] && printf 'Signed-By: %s\n' "$key"
    } > "$SRC_LIST.new"
    if ! cmp -s "$SRC_LIST.new" "$SRC_LIST" 2>/dev/null; then
        $SUDO mv "$SRC_LIST.new" "$SRC_LIST"
        return 0
    fi
    rm -f "$SRC_LIST.new"
    return 1
}

missing_pkgs() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' ||
            echo "$p"
    done
}

meson_ok() {
    command -v meson >/dev/null 2>&1 || return 1
    dpkg --compare-versions "$(meson --version)" ge "$MESON_MIN"
}

# apt-get update does not honour DPkg::Lock::Timeout for the lock of its
# lists (apt 2.6): retry while another program holds that lock.
updated=
apt_update() {
    local out waited=0
    [ -n "$updated" ] && return
    say "apt-get update"
    until out=$($SUDO apt-get update -qq 2>&1); do
        case $out in
        *"Could not get lock"*)
            [ "$waited" -lt "$LOCK_TIMEOUT" ] ||
                die "apt-get update: its lock stayed held for $LOCK_TIMEOUT s: $out"
            [ "$waited" -gt 0 ] || say "waiting for apt's lists lock, held by another program"
            sleep 5
            waited=$((waited + 5))
            ;;
        *) die "apt-get update failed: $out" ;;
        esac
    done
    updated=1
}

# Install packages ($@ after the apt options), waiting for dpkg's lock.
apt_install() {
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends -o "DPkg::Lock::Timeout=$LOCK_TIMEOUT" \
        "$@" >/dev/null
}

if write_sources; then
    say "wrote $SRC_LIST"
    updated=
    apt_update
fi
# deb-src lists may be missing on a machine whose lists were cleaned.
if ! apt-cache showsrc qemu 2>/dev/null | grep -q '^Version: 1:10\.0'; then
    apt_update
fi

mapfile -t need < <(missing_pkgs "${BASE_PKGS[@]}")
if [ ${#need[@]} -gt 0 ]; then
    apt_update
    say "installing ${need[*]}"
    apt_install "${need[@]}" || die "could not install ${need[*]} (apt's errors above)"
fi

mapfile -t need < <(missing_pkgs "${BACKPORT_PKGS[@]}")
if [ ${#need[@]} -gt 0 ] || ! meson_ok; then
    apt_update
    say "installing ${BACKPORT_PKGS[*]} from $codename-backports"
    apt_install -t "$codename-backports" "${BACKPORT_PKGS[@]}" ||
        die "could not install ${BACKPORT_PKGS[*]} from $codename-backports (apt's errors above)"
fi
meson_ok || die "meson >= $MESON_MIN is required, found $(meson --version 2>/dev/null || echo none)"
exit 0
