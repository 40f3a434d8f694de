#!/usr/bin/env bash
# Runs the whole test suite, as CI does. Installs the Debian packages the tests need when they
# are missing and this runs as root; otherwise names them and stops.
set -euo pipefail
shopt -s inherit_errexit 2>/dev/null || true
cd "$(dirname "$0")/.."

packages=()
command -v pkg-config >/dev/null 2>&1 || packages+=(pkg-config)
pkg-config --exists libsrtp2 2>/dev/null || packages+=(libsrtp2-dev)
command -v ffmpeg >/dev/null 2>&1 || packages+=(ffmpeg)
command -v gst-launch-1.0 >/dev/null 2>&1 || packages+=(gstreamer1.0-tools)
command -v kamailio >/dev/null 2>&1 || packages+=(kamailio)
command -v baresip >/dev/null 2>&1 || packages+=(baresip-core)
for p in gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad; do
  dpkg -s "$p" >/dev/null 2>&1 || packages+=("$p")
done
if ((${#packages[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "== installing ${packages[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
  else
    echo "The tests need these Debian packages: ${packages[*]}" >&2
    echo "Install them with: sudo apt-get install ${packages[*]}" >&2
    exit 1
  fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test (every target; benches run once each as tests)"
cargo test --workspace --all-targets --locked 2>&1 | tee -a "$log"
# srtp-core's own tests and the interoperability tests again with each SHA-1 backend this CPU
# can run forced (the run above used the fastest one): every backend passes the whole suite.
echo "== srtp-core and interop tests, portable SHA-1 (build-time feature)"
cargo test -p srtp-core -p srtp-tests --features srtp-core/portable --locked 2>&1 | tee -a "$log"
flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true)
for backend in avx2 sha-ext; do
  case "$backend" in
    avx2) need="avx2 bmi2" ;;
    sha-ext) need="sha_ni sse4_1 ssse3" ;;
  esac
  missing=""
  for f in $need; do
    [[ " $flags " == *" $f "* ]] || missing+=" $f"
  done
  if [ -n "$missing" ]; then
    echo "== $backend SHA-1 backend not run: this CPU lacks$missing"
    continue
  fi
  echo "== srtp-core and interop tests, SRTP_CORE_BACKEND=$backend"
  SRTP_CORE_BACKEND=$backend cargo test -p srtp-core -p srtp-tests --locked 2>&1 | tee -a "$log"
done
# The relay's tests again on the epoll driver: the run above used io_uring, the default where
# the kernel has it (and `every_io_driver_relays_the_same` fails where it does not).
echo "== srtp-relay tests, SRTP_RELAY_IO=epoll"
SRTP_RELAY_IO=epoll cargo test -p srtp-relay --locked 2>&1 | tee -a "$log"
echo "== doc tests"
cargo test --workspace --doc --locked 2>&1 | tee -a "$log"

# One closing line for the whole suite, summed over every test binary above.
passed=$(sed -n 's/^test result: .* \([0-9]\+\) passed.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(sed -n 's/^test result: .* \([0-9]\+\) failed.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
echo
echo "total: ${passed} passed, ${failed} failed"
