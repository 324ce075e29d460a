#!/usr/bin/env bash
# The whole suite: type-check, lint, build, then every Jest project (unit and e2e) in one run.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-output
rm -f test-output/jest.json
npm run --silent check || exit 1
npm run --silent lint || exit 1
npm run --silent build || exit 1
node --experimental-vm-modules --disable-warning=ExperimentalWarning node_modules/jest/bin/jest.js \
  --json --outputFile=test-output/jest.json --forceExit "$@"
