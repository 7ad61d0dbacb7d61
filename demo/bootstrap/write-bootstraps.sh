#!/bin/sh
# The demo's one-shot `bootstrap` service (meshd image): for each workload, what its agent needs
# for first contact and the Envoy bootstrap that points at the agent, exactly as a user would on
# a VM (README, "Running a sidecar"):
#
#   meshd token issue -n NS -s SA           a join token: the agent's first CSR only; after that it
#                                           renews with the SVID it holds
#   meshd ca root                           meshd's roots, so the agent can verify meshd
#   meshd bootstrap --agent -n NS -w NAME   node identity, ADS and SDS on the agent's sockets;
#                                           no token, key or roots in Envoy's file
#
#   write-bootstraps.sh <namespace>/<workload>=<serviceAccount> ...
#
# Environment: MESHD_DATA_DIR (meshd's data dir, mounted read-only: only the token signing key and
# the CA's roots are read), CONFIG_DIR (the mesh config), OUT_DIR (Envoy bootstraps),
# AGENTS_DIR (each workload's agent volume, mounted here at AGENTS_DIR/<namespace>.<workload>),
# AGENT_DIR (where the agent and Envoy mount that volume), XDS_ADDRESS (meshd as the agents reach
# it; also the access-log address in Envoy's bootstrap), SIDECAR_UID (the uid the agents and
# Envoy run as, owner of what is written).
set -eu
: "${MESHD_DATA_DIR:?}" "${CONFIG_DIR:?}" "${OUT_DIR:?}" "${AGENTS_DIR:?}" "${AGENT_DIR:?}" "${XDS_ADDRESS:?}" "${SIDECAR_UID:?}"
[ "$#" -gt 0 ] || { echo "usage: write-bootstraps.sh <namespace>/<workload>=<serviceAccount> ..." >&2; exit 2; }

umask 077
for spec in "$@"; do
  case "$spec" in
    */*=*) ;;
    *) echo "write-bootstraps: \"$spec\" is not <namespace>/<workload>=<serviceAccount>" >&2; exit 2 ;;
  esac
  ns="${spec%%/*}"
  rest="${spec#*/}"
  workload="${rest%%=*}"
  sa="${rest#*=}"
  agent="$AGENTS_DIR/$ns.$workload"
  [ -d "$agent" ] || { echo "write-bootstraps: $agent is not mounted (the workload's agent volume)" >&2; exit 1; }
  out="$OUT_DIR/$ns.$workload.yaml"
  # The token proves spiffe://<td>/ns/$ns/sa/$sa; meshd signs the agent's first CSR only for the
  # WorkloadEntry's service account (meshd bootstrap checks the entry exists and has one).
  meshd token issue -n "$ns" -s "$sa" > "$agent/join-token.new"
  mv "$agent/join-token.new" "$agent/join-token"
  meshd ca root > "$agent/meshd-root.new"
  chmod 644 "$agent/meshd-root.new"
  mv "$agent/meshd-root.new" "$agent/meshd-root.pem"
  meshd bootstrap --agent --certs "$AGENT_DIR/certs" --sds-socket "$AGENT_DIR/certs/sds.sock" \
    --config-dir "$CONFIG_DIR" -n "$ns" -w "$workload" --xds-address "$XDS_ADDRESS" -o "$out"
  chown "$SIDECAR_UID:$SIDECAR_UID" "$agent" "$agent/join-token" "$agent/meshd-root.pem" "$out"
  echo "write-bootstraps: $out and $agent/join-token for $ns/$workload (service account $sa), owned by uid $SIDECAR_UID"
done
