#!/usr/bin/env bash
# What the test suite needs from the system, in one place, and how it gets it.
#
# `npm test` runs this first (the `pretest` script). Every package below is used by real tests;
# none of them is mocked and no test skips because one is missing. When something is missing:
# - as root on Debian, it is installed with apt-get (one `apt-get update`, then one install);
# - otherwise the run stops at once with one line naming the packages and the command to run.
set -euo pipefail

# package            probe (succeeds when the package's part is usable)
PACKAGES=(
  "openssl           command -v openssl"                                  # openssl verify of issued certificates
  "prometheus        command -v prometheus && command -v promtool"         # a real Prometheus scrapes meshd; promtool checks rules
  "docker-compose    command -v docker-compose"                           # validates the demo's compose file offline (no engine needed)
  "postgresql        ls /usr/lib/postgresql/*/bin/initdb"                  # a real PostgreSQL per test file for the shared store
  "python3-grpcio    /usr/bin/python3 -c 'import grpc'"                     # gRPC C-core's xDS client and server
  "python3-protobuf  /usr/bin/python3 -c 'import google.protobuf'"         # what python3-grpcio's generated stubs import
)

# Prints the packages whose probe fails.
unusable() {
  local entry package
  for entry in "${PACKAGES[@]}"; do
    package=${entry%% *}
    bash -c "${entry#"$package"}" >/dev/null 2>&1 || echo "$package"
  done
}

mapfile -t missing < <(unusable)
[ ${#missing[@]} -eq 0 ] && exit 0

install_cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "meshd's tests need these Debian packages, which are missing: ${missing[*]}. Install them with: sudo apt-get update && sudo $install_cmd" >&2
  exit 1
fi

echo "installing the system packages the tests need: ${missing[*]} (apt-get, about a minute)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --no-install-recommends: prometheus without node-exporter, docker-compose without a Docker engine.
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

mapfile -t still < <(unusable)
if [ ${#still[@]} -gt 0 ]; then
  echo "apt-get installed ${missing[*]}, but these are still not usable: ${still[*]}" >&2
  exit 1
fi
