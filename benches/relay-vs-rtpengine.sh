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
#   REPEAT=5 MAX_RATE=0 benches/relay-vs-rtpengine.sh
#
# REPEAT=N runs the fixed-load rows N times, round after round (each round every relay in
# turn), and ends with a summary: per relay and media the median CPU µs per packet (and its
# range), and the median of the per-round ratios to rtpengine's row of the same round, so a
# change of the shared machine's speed between rounds shifts both sides of a ratio alike.
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
rows=$(mktemp)
taskset -c 0 target/release/srtp-relay serve --state-dir "$state" --workers 1 \
  --api-listen 127.0.0.1:18443 --ng-listen 127.0.0.1:2224 --ports 40000-49999 \
  --log-level error >/dev/null 2>&1 &
relay=$!
taskset -c 0 rtpengine --config-file=none --foreground --log-stderr --log-level=3 --table=-1 \
  --interface=127.0.0.1 --listen-ng=127.0.0.1:2223 --port-min=2000 --port-max=29999 \
  --num-threads=1 --delete-delay=0 2>/dev/null &
rtpe=$!
trap 'kill $relay $rtpe 2>/dev/null || true; rm -rf "$state" "$rows"' EXIT
sleep 1.5

run() { target/release/srtp-loadgen --calls "$calls" --duration "$duration" "$@" 2>/dev/null; }
row() { tail -n +3 | tee -a "$rows"; }
rounds=${REPEAT:-1}
for round in $(seq "$rounds"); do
  [ "$rounds" = 1 ] || echo "round $round of $rounds"
  echo "round $round" >>"$rows"
  out=$(run --target trivial --media rtp-rtp)
  [ "$round" != 1 ] || echo "$out" | head -2
  echo "$out" | row
  for media in rtp-rtp srtp-rtp srtp-srtp; do
    run --target srtp-relay --media "$media" | row
    SRTP_RELAY_IO=epoll run --target srtp-relay --media "$media" | row
    run --target rtpengine --ng 127.0.0.1:2224 --rtpengine-pid "$relay" --media "$media" | row
    run --target rtpengine --ng 127.0.0.1:2223 --rtpengine-pid "$rtpe" --media "$media" | row
  done
done

if [ "$rounds" != 1 ]; then
  echo
  echo "Median of $rounds rounds (relay CPU µs per packet; ratio: median of the per-round ratios to rtpengine's row of the same round and media):"
  echo
  echo "| relay | media | CPU µs/pkt, median | min–max | ratio to rtpengine, median | min–max |"
  echo "|---|---|---:|---|---:|---|"
  # The rows file holds "round N" lines before each round's rows; the last field of a row is
  # its CPU µs per packet.
  awk -F'|' '
    function trim(s) { gsub(/^ +| +$/, "", s); return s }
    function med(list,   a, n, i, j, t) {
      n = split(list, a, " ")
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
      return sprintf("%.2f|%.2f–%.2f", (a[int((n + 1) / 2)] + a[int(n / 2) + 1]) / 2, a[1], a[n])
    }
    /^round / { r = $0; sub(/^round /, "", r); r += 0; next }
    /^\| / {
      name = trim($2); media = trim($3); cpu = trim($(NF - 1))
      key = name SUBSEP media
      if (!(key in cpus)) order[++keys] = key
      cpus[key] = cpus[key] " " cpu
      at[r, key] = cpu
      if (name ~ /^rtpengine/) engine[r, media] = cpu
      if (r > rounds) rounds = r
    }
    END {
      for (i = 1; i <= keys; i++) {
        key = order[i]; split(key, nm, SUBSEP); ratios = ""
        for (r = 1; r <= rounds; r++)
          if ((r, key) in at && (r, nm[2]) in engine && engine[r, nm[2]] > 0)
            ratios = ratios " " at[r, key] / engine[r, nm[2]]
        split(med(cpus[key]), c, "|")
        if (ratios == "") { q[1] = "—"; q[2] = "—" } else split(med(ratios), q, "|")
        printf "| %s | %s | %s | %s | %s | %s |\n", nm[1], nm[2], c[1], c[2], q[1], q[2]
      }
    }' "$rows"
fi

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
