#!/usr/bin/env bash
# srtp-relay against rtpengine under the same load, in one run: each relay with one worker
# pinned to core 0, the load generator on core 1, 172-byte packets at 50 packets/s per call,
# one direction. Prints one Markdown table row per relay and media, after the floor: a
# trivial forwarder (one socket per call, epoll, no parsing or crypto) on the same core.
#
#   benches/relay-vs-rtpengine.sh            # CALLS=300 DURATION=10 by default
#   CALLS=1000 DURATION=20 benches/relay-vs-rtpengine.sh
#
# Needs Debian's rtpengine-daemon (installed when missing and running as root).
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${CALLS:-300}
duration=${DURATION:-10}
ng=127.0.0.1:2223

if ! command -v rtpengine >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rtpengine-daemon
    systemctl stop rtpengine-daemon 2>/dev/null || true
  else
    echo "Needs Debian's rtpengine-daemon: sudo apt-get install rtpengine-daemon" >&2
    exit 1
  fi
fi
cargo build --release -q -p srtp-loadgen

taskset -c 0 rtpengine --config-file=none --foreground --log-stderr --log-level=3 --table=-1 \
  --interface=127.0.0.1 --listen-ng=$ng --port-min=20000 --port-max=29999 --num-threads=1 \
  2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
sleep 1

first=1
out=$(target/release/srtp-loadgen --target trivial --calls "$calls" --duration "$duration" \
  --media rtp-rtp 2>/dev/null)
echo "$out" | head -2
echo "$out" | tail -n +3
first=0
for media in rtp-rtp srtp-rtp srtp-srtp; do
  for target in srtp-relay rtpengine; do
    out=$(target/release/srtp-loadgen --target "$target" --rtpengine-pid "$pid" --ng "$ng" \
      --calls "$calls" --duration "$duration" --media "$media" 2>/dev/null)
    if [ $first = 1 ]; then echo "$out" | head -2; first=0; fi
    echo "$out" | tail -n +3
  done
done
