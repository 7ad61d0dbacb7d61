#!/usr/bin/env bash
# tap compiles its plugin list into node_modules/@tapjs/test when it is installed, and a fresh
# install has tap's default list, whose TypeScript plugin starts every test file with ts-node's
# loader (seconds of CPU each; the tests are compiled to dist-test/ and do not need it). tap
# notices our list ("plugin" in package.json) differs and rebuilds, but only after its runner
# has read the old list, so that whole run still pays for ts-node. Building first avoids it.
set -euo pipefail
cd "$(dirname "$0")/.."
built=node_modules/@tapjs/test/test-built/dist/esm/index.js
if [ ! -f "$built" ] || grep -q '@tapjs/typescript/import' "$built"; then
  echo "building tap with meshd's plugin list (once after npm install)" >&2
  npx tap build >/dev/null
fi
