#!/bin/sh
# Entrypoint of a demo sidecar (envoyproxy/envoy image): run Envoy with the bootstrap the
# `bootstrap` service wrote for this workload (it has Istio's Prometheus stats listener on 15090).
#
#   run-sidecar.sh <namespace>.<workload>      e.g. payments.api-1
#
# It goes through the image's own /docker-entrypoint.sh, which drops root and runs Envoy as
# ENVOY_UID/ENVOY_GID (1337 here, Istio's proxy user; the bootstrap file is 0600 and owned by it).
set -eu
name="${1:?usage: run-sidecar.sh <namespace>.<workload>}"
bootstrap="/etc/meshd/$name.yaml"
if [ ! -s "$bootstrap" ]; then
  echo "run-sidecar: $bootstrap is missing: the bootstrap service writes it (docker compose logs bootstrap)" >&2
  exit 1
fi
# --disable-hot-restart: one Envoy per network namespace, restarted by compose, never hot.
exec /docker-entrypoint.sh envoy \
  --config-path "$bootstrap" \
  --disable-hot-restart \
  --log-level "${ENVOY_LOG_LEVEL:-warn}"
