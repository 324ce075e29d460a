#!/usr/bin/env bash
# The packages as a user gets them: builds them, packs each (and checks that a tarball holds only
# dist/, README.md, LICENSE and package.json), installs the tarballs into a copy of
# examples/consumer OUTSIDE the workspace (its other dependencies from the npm registry, pinned to
# the root's versions), builds it with its own strict tsconfig against the shipped declarations,
# and runs its e2e tests (node:test, @duo-nest/testing against the real simulator).
# Writes test-output/consumer.json ({ passed, failed, seconds, ... }) and prints its counts; any
# failing step counts as at least one failed test. Exit status 0 only when all passed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OUT="$ROOT/test-output/consumer.json"
PACKAGES=(core audit simulator testing)
mkdir -p "$ROOT/test-output"
rm -f "$OUT"
STARTED=$(date +%s)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/duo-nest-consumer.XXXXXX")
KEEP=${CONSUMER_KEEP:-0}
trap '[ "$KEEP" = 1 ] || rm -rf "$WORK"' EXIT

PASSED=0
FAILED=0
FAILURES=()
pass() { PASSED=$((PASSED + 1)); echo "  ok   $1"; }
fail() { FAILED=$((FAILED + 1)); FAILURES+=("$1"); echo "  FAIL $1"; }

# Writes the result file and the counts line; exits.
finish() {
  local seconds=$(($(date +%s) - STARTED))
  node -e '
    const [out, passed, failed, seconds, ...failures] = process.argv.slice(1);
    const result = { passed: +passed, failed: +failed, seconds: +seconds, failures };
    require("node:fs").writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
  ' "$OUT" "$PASSED" "$FAILED" "$seconds" "${FAILURES[@]}"
  echo "consumer: $PASSED passed, $FAILED failed (${seconds}s)"
  [ "$FAILED" -eq 0 ]
  exit $?
}

echo "consumer: building the packages"
if ! npm run --silent build:packages; then
  fail 'the packages build'
  finish
fi

# tsc -b never deletes: an output whose source file is gone (moved or split) would still ship.
for name in "${PACKAGES[@]}"; do
  (cd "packages/$name" && find dist -type f \( -name '*.js' -o -name '*.d.ts' -o -name '*.map' \) |
    while read -r out; do
      base=${out#dist/}
      base=${base%.map}
      base=${base%.d.ts}
      base=${base%.js}
      [ -f "src/$base.ts" ] || rm -f "$out"
    done)
done

echo "consumer: packing into $WORK/tarballs"
mkdir -p "$WORK/tarballs"
for name in "${PACKAGES[@]}"; do
  json=$(cd "packages/$name" && npm pack --json --pack-destination "$WORK/tarballs" 2>/dev/null)
  # Only dist/ (no build info), README.md, LICENSE and package.json may ship.
  stray=$(node -e '
    const [pack] = JSON.parse(process.argv[1]);
    const ok = (p) => ["package.json", "README.md", "LICENSE"].includes(p) ||
      (p.startsWith("dist/") && !p.endsWith(".tsbuildinfo"));
    const stray = pack.files.map((f) => f.path).filter((p) => !ok(p));
    const needed = ["package.json", "README.md", "LICENSE", "dist/index.js", "dist/index.d.ts"]
      .filter((p) => !pack.files.some((f) => f.path === p));
    console.log([...stray, ...needed.map((p) => "missing " + p)].join(" "));
  ' "$json" 2>&1)
  if [ -z "$stray" ]; then
    pass "@duo-nest/$name packs only dist, README, LICENSE and package.json"
  else
    fail "@duo-nest/$name packs only dist, README, LICENSE and package.json ($stray)"
  fi
done
tgz() { ls "$WORK"/tarballs/duo-nest-"$1"-*.tgz; }

echo "consumer: installing the tarballs into a copy outside the workspace ($WORK/app)"
mkdir -p "$WORK/app"
cp -R examples/consumer/. "$WORK/app/"
rm -rf "$WORK/app/node_modules" "$WORK/app/dist" "$WORK/app/package-lock.json"
INSTALL_STARTED=$(date +%s)
# The consumer's own dependencies name the packages by version (0.2.0); the tarballs satisfy them.
# audit is packed and checked above; the example does not use it (its peers are TypeORM's).
# One install: package.json names @duo-nest/testing by version, which only its tarball satisfies.
if ! (cd "$WORK/app" && npm install --no-audit --no-fund --prefer-offline --loglevel=error \
  "$(tgz core)" "$(tgz simulator)" "$(tgz testing)" >/dev/null); then
  fail 'npm install of the tarballs'
  finish
fi
echo "consumer: npm install took $(($(date +%s) - INSTALL_STARTED))s"
# Really the packed files: no link back into the workspace.
if find "$WORK/app/node_modules/@duo-nest" -maxdepth 1 -type l | grep -q .; then
  fail 'the installed @duo-nest packages are copies, not workspace links'
else
  pass 'the installed @duo-nest packages are copies, not workspace links'
fi

# The example installs no optional peer (ioredis, pg, better-sqlite3, TypeORM): the strict build
# below then proves that the shipped declarations compile without them (skipLibCheck: false).
present=$(cd "$WORK/app/node_modules" && ls -d ioredis pg better-sqlite3 typeorm 2>/dev/null | tr '\n' ' ')
if [ -z "$present" ]; then
  pass 'no optional peer is installed (ioredis, pg, better-sqlite3, typeorm)'
else
  fail "no optional peer is installed (found: $present)"
fi

echo "consumer: strict TypeScript build (tsc -p .)"
if (cd "$WORK/app" && npx --no-install tsc -p .); then
  pass 'the consumer compiles with strict TypeScript against the shipped declarations'
else
  fail 'the consumer compiles with strict TypeScript against the shipped declarations'
  finish
fi

echo "consumer: e2e tests (node:test)"
(cd "$WORK/app" && node --test --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$WORK/tap.txt" dist/test/)
TEST_STATUS=$?
tests_passed=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$WORK/tap.txt" 2>/dev/null | tail -1)
tests_failed=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$WORK/tap.txt" 2>/dev/null | tail -1)
PASSED=$((PASSED + ${tests_passed:-0}))
FAILED=$((FAILED + ${tests_failed:-0}))
if [ "$TEST_STATUS" -ne 0 ] && [ "${tests_failed:-0}" -eq 0 ]; then
  fail 'the e2e run (node --test exited non-zero without a failed test)'
fi
if [ "${tests_passed:-0}" -eq 0 ] && [ "${tests_failed:-0}" -eq 0 ]; then
  fail 'the e2e run found no tests'
fi
finish
