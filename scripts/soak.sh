#!/usr/bin/env bash
# The agent long-run test for longer (default 30 minutes): join tokens of 60 s, SVIDs of 20 s,
# meshd closed and started again every 5 minutes, calls all the time. Prints its figures at the end.
#   MESHD_SOAK_MINUTES=60 npm run soak
set -euo pipefail
cd "$(dirname "$0")/.."
export MESHD_SOAK_MINUTES="${MESHD_SOAK_MINUTES:-30}"
# The tests run compiled, as in `npm test`: build them and the CLI first.
npm run --silent build:tests
npm run --silent build
bash scripts/prepare-tap.sh
exec npx tap --disable-coverage --timeout=$(( MESHD_SOAK_MINUTES * 60 + 900 )) dist-test/test/agent/long-run.test.js
