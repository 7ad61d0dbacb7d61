#!/bin/sh
# The demo's one-shot `bootstrap` service (meshd image): one Envoy bootstrap per sidecar, written
# into the volume the sidecars mount, exactly as a user would for a VM:
#
#   meshd token issue -n NS -s SA               a bearer token for the workload's identity
#   meshd bootstrap -n NS -w NAME --token-file  node identity, ADS to meshd over TLS, the token
#
#   write-bootstraps.sh <namespace>/<workload>=<serviceAccount> ...
#
# Environment: MESHD_DATA_DIR (meshd's data dir, mounted read-only: only the token signing key and
# the CA's roots are read), CONFIG_DIR (the mesh config), OUT_DIR, XDS_ADDRESS (meshd as the
# sidecars reach it), SIDECAR_UID (owner of the 0600 files: the uid Envoy runs as).
set -eu
: "${MESHD_DATA_DIR:?}" "${CONFIG_DIR:?}" "${OUT_DIR:?}" "${XDS_ADDRESS:?}" "${SIDECAR_UID:?}"
[ "$#" -gt 0 ] || { echo "usage: write-bootstraps.sh <namespace>/<workload>=<serviceAccount> ..." >&2; exit 2; }

token="$(mktemp)"
trap 'rm -f "$token"' EXIT
for spec in "$@"; do
  case "$spec" in
    */*=*) ;;
    *) echo "write-bootstraps: \"$spec\" is not <namespace>/<workload>=<serviceAccount>" >&2; exit 2 ;;
  esac
  ns="${spec%%/*}"
  rest="${spec#*/}"
  workload="${rest%%=*}"
  sa="${rest#*=}"
  out="$OUT_DIR/$ns.$workload.yaml"
  # The token proves spiffe://<td>/ns/$ns/sa/$sa; meshd admits the sidecar only if that is the
  # WorkloadEntry's service account (meshd bootstrap checks it too, before writing anything).
  # Envoy presents it again on every reconnect, so it must outlive the demo: 30 days (meshd token
  # issue warns about a token that long-lived).
  meshd token issue -n "$ns" -s "$sa" --ttl 720h > "$token"
  meshd bootstrap --config-dir "$CONFIG_DIR" -n "$ns" -w "$workload" \
    --token-file "$token" --xds-address "$XDS_ADDRESS" -o "$out"
  chown "$SIDECAR_UID:$SIDECAR_UID" "$out"
  echo "write-bootstraps: $out for $ns/$workload (service account $sa), owned by uid $SIDECAR_UID"
done
