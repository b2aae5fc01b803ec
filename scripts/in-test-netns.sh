#!/usr/bin/env bash
# Runs "$@" in a new network namespace whose only interfaces are loopback and a dummy device holding the
# test-host addresses 198.18.0.2-198.18.0.41, the rig's pod addresses 198.18.1.2-198.18.1.61 and the edge
# simulator's tunnel entrances of the Gateway API conformance run 198.18.2.2-198.18.2.81 (one per Gateway's
# tunnel): traffic to anything else cannot leave it. Also a new PID namespace (with its own /proc): when "$@"
# ends, every process a test started and left behind ends with it, so no run leaves processes on the machine.
# Used by scripts/test.sh and by benchmarks that send traffic to test hosts (bench/controller.ts).
set -euo pipefail
setup='ip link set lo up
  if ip link add wt0 type dummy 2>/dev/null; then ip link set wt0 up; dev=wt0; else dev=lo; fi
  for i in $(seq 2 41); do ip addr add 198.18.0.$i/32 dev $dev; done
  for i in $(seq 2 61); do ip addr add 198.18.1.$i/32 dev $dev; done
  for i in $(seq 2 81); do ip addr add 198.18.2.$i/32 dev $dev; done
  "$@"'
# bash stays PID 1 of the namespace (no exec), so it reaps orphaned processes and exits with the status of "$@";
# the namespace ends with it.
pidns=(--pid --fork --mount-proc --kill-child)
if [[ $(id -u) == 0 ]] && command -v unshare >/dev/null && unshare -n "${pidns[@]}" true 2>/dev/null; then
  exec unshare -n "${pidns[@]}" -- bash -c "$setup" bash "$@"
elif command -v unshare >/dev/null && unshare -rn "${pidns[@]}" true 2>/dev/null; then
  exec unshare -rn "${pidns[@]}" -- bash -c "$setup" bash "$@"
else
  echo "warning: cannot create a network namespace; tests that need test hosts (198.18.0.0/15) will fail" >&2
  exec "$@"
fi
