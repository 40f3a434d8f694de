#!/usr/bin/env bash
# Builds Debian's libsrtp2 source package against OpenSSL into target/libsrtp2-openssl/, so the
# benchmarks can compare with the strongest libsrtp2 (Debian's own build uses NSS, which is
# 3-4x slower per packet). The benches load it beside the system library, in the same run.
#
# Needs: deb-src entries for Debian (added when running as root), libssl-dev, gcc, make.
set -euo pipefail
cd "$(dirname "$0")/.."
out="$PWD/target/libsrtp2-openssl"
if [ -f "$out/libsrtp2.so.1" ]; then
  echo "already built: $out/libsrtp2.so.1"
  exit 0
fi

packages=()
dpkg -s libssl-dev >/dev/null 2>&1 || packages+=(libssl-dev)
command -v make >/dev/null 2>&1 || packages+=(make)
command -v gcc >/dev/null 2>&1 || packages+=(gcc)
if [ "$(id -u)" = 0 ]; then
  if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
    cat > /etc/apt/sources.list.d/debian-src.sources <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  apt-get update -qq
  if ((${#packages[@]})); then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
  fi
elif ((${#packages[@]})); then
  echo "Needs these Debian packages: ${packages[*]} (sudo apt-get install ${packages[*]})" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source --download-only -qq libsrtp2 2>/dev/null)
tar -C "$work" -xzf "$work"/libsrtp2_*.orig.tar.gz
src=$(find "$work" -maxdepth 1 -type d -name 'libsrtp*' | head -1)
(cd "$src" && ./configure --enable-openssl >/dev/null && make -j"$(nproc)" shared_library >/dev/null)
mkdir -p "$out"
cp "$src/libsrtp2.so.1" "$out/"
echo "built $out/libsrtp2.so.1 ($(basename "$src"), OpenSSL $(openssl version | cut -d' ' -f2))"
