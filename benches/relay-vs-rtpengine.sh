#!/usr/bin/env bash
# srtp-relay against rtpengine under the same load, in one run. Every relay gets one worker
# pinned to core 0; the load generator runs on core 1; 172-byte packets at 50 packets/s per
# call, one direction. Rows: the floor (a trivial forwarder: one socket per call, epoll, no
# parsing or crypto), srtp-relay in the load generator's process (library; on io_uring, its
# default, and on epoll), srtp-relay serve (its own process, driven over ng exactly as
# rtpengine is) and rtpengine. Then, unless
# MAX_RATE=0, the highest sustained SRTP->RTP rate of srtp-relay (one worker) and of rtpengine
# (one thread): calls ramp up a quarter a step from RAMP_FROM (600) until a step loses more
# than 0.01%, its median latency passes 1 ms (the relay fell behind) or the load generator
# cannot offer more.
#
#   benches/relay-vs-rtpengine.sh            # CALLS=300 DURATION=10 by default
#   CALLS=1000 DURATION=20 benches/relay-vs-rtpengine.sh
#   MAX_RATE=0 benches/relay-vs-rtpengine.sh  # the fixed-load tables only
#
# Needs Debian's rtpengine-daemon (installed when missing and running as root).
set -euo pipefail
cd "$(dirname "$0")/.."
calls=${CALLS:-300}
duration=${DURATION:-10}

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
cargo build --release -q -p srtp-loadgen -p srtp-relay

state=$(mktemp -d)
taskset -c 0 target/release/srtp-relay serve --state-dir "$state" --workers 1 \
  --api-listen 127.0.0.1:18443 --ng-listen 127.0.0.1:2224 --ports 40000-49999 \
  --log-level error >/dev/null 2>&1 &
relay=$!
taskset -c 0 rtpengine --config-file=none --foreground --log-stderr --log-level=3 --table=-1 \
  --interface=127.0.0.1 --listen-ng=127.0.0.1:2223 --port-min=2000 --port-max=29999 \
  --num-threads=1 --delete-delay=0 2>/dev/null &
rtpe=$!
trap 'kill $relay $rtpe 2>/dev/null || true; rm -rf "$state"' EXIT
sleep 1.5

run() { target/release/srtp-loadgen --calls "$calls" --duration "$duration" "$@" 2>/dev/null; }
out=$(run --target trivial --media rtp-rtp)
echo "$out" | head -2
echo "$out" | tail -n +3
for media in rtp-rtp srtp-rtp srtp-srtp; do
  run --target srtp-relay --media "$media" | tail -n +3
  SRTP_RELAY_IO=epoll run --target srtp-relay --media "$media" | tail -n +3
  run --target rtpengine --ng 127.0.0.1:2224 --rtpengine-pid "$relay" --media "$media" | tail -n +3
  run --target rtpengine --ng 127.0.0.1:2223 --rtpengine-pid "$rtpe" --media "$media" | tail -n +3
done

if [ "${MAX_RATE:-1}" != 0 ]; then
  ramp() { target/release/srtp-loadgen --find-max --calls "${RAMP_FROM:-600}" --duration 4 \
    --media srtp-rtp "$@" 2>/dev/null; }
  echo
  echo "Highest sustained SRTP->RTP rate, srtp-relay (one worker, io_uring):"
  ramp --target srtp-relay
  echo
  echo "Highest sustained SRTP->RTP rate, srtp-relay (one worker, epoll):"
  SRTP_RELAY_IO=epoll ramp --target srtp-relay
  echo
  echo "Highest sustained SRTP->RTP rate, rtpengine (one thread):"
  ramp --target rtpengine --ng 127.0.0.1:2223 --rtpengine-pid "$rtpe"
fi
