#!/bin/sh
# Entrypoint of a demo sidecar (envoyproxy/envoy image): run Envoy with the bootstrap the
# `bootstrap` service wrote for this workload (`meshd bootstrap --agent`: ADS and SDS on the
# agent's sockets in AGENT_CERTS; Istio's Prometheus stats listener on 15090).
#
#   run-sidecar.sh <namespace>.<workload>      e.g. payments.api-1
#
# It waits (up to a minute) for the agent's two sockets, so Envoy's first connection does not
# race the agent's start, then goes through the image's own /docker-entrypoint.sh, which drops
# root and runs Envoy as ENVOY_UID/ENVOY_GID (1337 here, Istio's proxy user; the agent runs as it
# too and its sockets are 0600).
set -eu
name="${1:?usage: run-sidecar.sh <namespace>.<workload>}"
bootstrap="/etc/meshd/$name.yaml"
if [ ! -s "$bootstrap" ]; then
  echo "run-sidecar: $bootstrap is missing: the bootstrap service writes it (docker compose logs bootstrap)" >&2
  exit 1
fi
certs="${AGENT_CERTS:?AGENT_CERTS: the agent's --out directory, where its sockets are}"
tries=0
until [ -S "$certs/xds.sock" ] && [ -S "$certs/sds.sock" ]; do
  tries=$((tries + 1))
  if [ "$tries" -gt 60 ]; then
    echo "run-sidecar: no agent sockets in $certs after 60 s (docker compose logs ${name#*.}-agent)" >&2
    exit 1
  fi
  sleep 1
done
# --disable-hot-restart: one Envoy per network namespace, restarted by compose, never hot.
exec /docker-entrypoint.sh envoy \
  --config-path "$bootstrap" \
  --disable-hot-restart \
  --log-level "${ENVOY_LOG_LEVEL:-warn}"
