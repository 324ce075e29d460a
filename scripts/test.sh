#!/usr/bin/env bash
# The whole suite: type-check, lint, build, then every Jest project (unit and e2e) in one run, then
# the consumer app installed from the packed packages (scripts/consumer.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p test-output
rm -f test-output/jest.json test-output/consumer.json
npm run --silent check || exit 1
npm run --silent lint || exit 1
npm run --silent build || exit 1
node --experimental-vm-modules --disable-warning=ExperimentalWarning node_modules/jest/bin/jest.js \
  --json --outputFile=test-output/jest.json --forceExit "$@"
JEST_STATUS=$?
bash scripts/consumer.sh
CONSUMER_STATUS=$?
if [ ! -f test-output/consumer.json ]; then
  echo '{ "passed": 0, "failed": 1, "failures": ["scripts/consumer.sh wrote no result"] }' \
    >test-output/consumer.json
fi
[ "$JEST_STATUS" -eq 0 ] && [ "$CONSUMER_STATUS" -eq 0 ]
