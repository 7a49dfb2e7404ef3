#!/usr/bin/env bash
# Benchmark setup: installs the contenders and load generators from Debian when they are missing
# (openssh-server for `ssh -R`, iperf3, wrk, openssl for the TLS tunnel's certificate), raises
# the open-file limit for the 10,000-session memory figure, then runs the benchmark with the Node
# that npm scripts put first on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v /usr/sbin/sshd >/dev/null 2>&1 || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v iperf3 >/dev/null 2>&1 || need+=(iperf3)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "bench: installing ${need[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "bench: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 1
  fi
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
exec node bench/run.ts "$@"
