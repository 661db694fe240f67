#!/bin/bash
# Build qemu-dseg: fetch Debian's QEMU 10.0.x source package, overlay our
# files, apply patches/series, configure a lean TCG-only x86_64-softmmu and
# build it.  Every step is skipped when its inputs have not changed.
#
#   scripts/build-qemu.sh [--upstream|--upstream-tlb|--sanitize]
#                         [BUILD_DIR [STAMP]]          (default: build)
#
# Result: BUILD_DIR/qemu/qemu-system-x86_64.  With --upstream, the same
# source, configuration and device set without our code and patches, in
# BUILD_DIR/qemu-upstream/ (the baseline of scripts/bench-overhead.sh).
# With --upstream-tlb, upstream plus only the fixed-size TLB option
# (patches/0005-tcg-tlb-size.patch, accel/), in BUILD_DIR/qemu-upstream-tlb/:
# the baseline of bench-overhead.sh --fixed-tlb.  With --sanitize, the fork
# built with AddressSanitizer and UndefinedBehaviorSanitizer, in
# BUILD_DIR/qemu-sanitize/ (scripts/check-sanitize.sh runs the tests on it).
# The download is cached in $QEMU_DSEG_CACHE (default ~/.cache/qemu-dseg)
# so a rebuild fetches nothing.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
flavour=qemu
pkgversion=qemu-dseg
case "${1:-}" in
--upstream)
    flavour=qemu-upstream
    pkgversion=upstream
    shift
    ;;
--upstream-tlb)
    flavour=qemu-upstream-tlb
    pkgversion=upstream+tlb-size
    shift
    ;;
--sanitize)
    flavour=qemu-sanitize
    pkgversion=qemu-dseg+asan+ubsan
    shift
    ;;
esac
out=$(mkdir -p "${1:-$repo/build}" && cd "${1:-$repo/build}" && pwd)
stamp=${2:-}
cache=${QEMU_DSEG_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/qemu-dseg}
suite=${QEMU_DSEG_UPSTREAM_SUITE:-trixie}
src=$out/$flavour-src
bld=$out/$flavour

# Directories of ours that take their place in the QEMU tree; upstream
# builds get only the build configuration (the device set).
OVERLAY_DIRS="accel configs contrib/plugins docs hw include qapi target"
series=$repo/patches/series
case $flavour in
qemu-upstream)
    OVERLAY_DIRS=configs
    series=/dev/null
    ;;
qemu-upstream-tlb)
    OVERLAY_DIRS="accel configs"
    series=$out/.qemu-upstream-tlb.series
    echo 0005-tcg-tlb-size.patch > "$series"
    ;;
esac

say() { printf 'build-qemu: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- 1. the upstream source package, cached --------------------------------
mkdir -p "$cache/upstream"
dsc=$(ls "$cache"/upstream/qemu_*.dsc 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$dsc" ]; then
    say "fetching Debian's qemu source package ($suite) into $cache/upstream"
    (cd "$cache/upstream" &&
        apt-get source --download-only -qq "qemu/$suite" >/dev/null 2>&1) ||
        die "apt-get source qemu/$suite failed; run scripts/setup.sh first"
    dsc=$(ls "$cache"/upstream/qemu_*.dsc | sort -V | tail -n 1)
fi
deb_version=$(sed -n 's/^Version: //p' "$dsc")
upstream_version=${deb_version#*:}
upstream_version=${upstream_version%%+*}
upstream_version=${upstream_version%%-*}
case "$upstream_version" in
10.0.*) ;;
*) die "qemu-dseg is based on QEMU 10.0.x, but the source package is $deb_version ($dsc); remove it or set QEMU_DSEG_UPSTREAM_SUITE" ;;
esac

# --- 2. a patched tree; re-extracted whenever the patch series changes ------
tree_id=$(cd "$repo/patches" && (echo "$deb_version"; cat "$series";
            [ "$series" = /dev/null ] || cat ./*.patch 2>/dev/null || :) |
          sha256sum | cut -c1-16)
if [ "$(cat "$src/.qemu-dseg-tree" 2>/dev/null)" != "$tree_id" ]; then
    say "extracting $deb_version and applying patches/series"
    rm -rf "$src" "$bld"
    dpkg-source -q -x "$dsc" "$src" >/dev/null 2>&1 ||
        die "dpkg-source could not unpack $dsc"
    while read -r p; do
        case "$p" in ''|\#*) continue ;; esac
        patch -d "$src" -p1 -s --forward < "$repo/patches/$p" ||
            die "patch $p does not apply to $deb_version"
    done < "$series"
    echo "$deb_version" > "$src/.qemu-dseg-upstream"
    echo "$tree_id" > "$src/.qemu-dseg-tree"
fi

# --- 3. overlay our files; copy only what changed, to keep rebuilds small ---
(cd "$repo" && for d in $OVERLAY_DIRS; do
    if [ -d "$d" ]; then find "$d" -type f; fi
done) | while read -r f; do
    if ! cmp -s "$repo/$f" "$src/$f"; then
        mkdir -p "$(dirname "$src/$f")"
        cp "$repo/$f" "$src/$f"
    fi
done

# --- 4. configure ------------------------------------------------------------
config_args=(
    --python=/usr/bin/python3
    --target-list=x86_64-softmmu
    --without-default-features
    --enable-tcg --disable-kvm --disable-xen
    --enable-plugins --enable-slirp
    --without-default-devices --with-devices-x86_64=qemu-dseg
    --disable-docs --disable-install-blobs
    --firmwarepath=/usr/share/seabios
    "--with-pkgversion=$pkgversion, Debian $deb_version"
)
if [ "$flavour" = qemu-sanitize ]; then
    # -O1 with line tables and frame pointers, as the sanitizers' own
    # documentation advises: reports keep their file:line stacks, and
    # the build takes about half the time of -O2 -g.
    config_args+=(--enable-asan --enable-ubsan
                  '--extra-cflags=-O1 -g1 -fno-omit-frame-pointer')
fi
config_id=$(printf '%s\n' "$tree_id" "${config_args[@]}" | sha256sum | cut -c1-16)
export PATH=/usr/lib/ccache:$PATH
if [ "$(cat "$bld/.qemu-dseg-config" 2>/dev/null)" != "$config_id" ]; then
    say "configuring in $bld"
    mkdir -p "$bld"
    (cd "$bld" && "$src/configure" "${config_args[@]}" > configure.log 2>&1) ||
        { tail -n 30 "$bld/configure.log" >&2; die "configure failed (log: $bld/configure.log)"; }
    echo "$config_id" > "$bld/.qemu-dseg-config"
fi

# --- 5. build ---------------------------------------------------------------
say "building qemu-system-x86_64 in $bld"
# Only the emulator, its TCG plugins (contrib/plugins: QEMU's and the TLB
# model's) and the x86 option ROMs (linuxboot, multiboot, pvh), not QEMU's
# own tests.
{ ninja -C "$bld" qemu-system-x86_64 contrib-plugins &&
  make -C "$bld" --no-print-directory pc-bios/optionrom/all; } \
    > "$bld/build.log" 2>&1 ||
    { grep -E 'error|Error' "$bld/build.log" | head -n 30 >&2;
      die "build failed (log: $bld/build.log)"; }
# Run from the build tree, QEMU looks for firmware under qemu-bundle/ (the
# configured paths relocated there): link in the option ROMs we built and
# Debian's SeaBIOS images.
bundle_data=$bld/qemu-bundle/usr/local/share/qemu
mkdir -p "$bundle_data" "$bld/qemu-bundle/usr/share"
ln -sfn /usr/share/seabios "$bld/qemu-bundle/usr/share/seabios"
for rom in "$bld"/pc-bios/optionrom/*.bin; do
    ln -sf "$rom" "$bundle_data/"
done
say "built $bld/qemu-system-x86_64 ($("$bld/qemu-system-x86_64" --version | head -n 1))"
[ -z "$stamp" ] || touch "$stamp"
