// Prints the plain closing line CI reads, from Jest's --json output.
import { existsSync, readFileSync } from 'node:fs';

const file = process.argv[2] ?? 'test-output/jest.json';
if (!existsSync(file)) {
  console.log('0 passed, 1 failed');
  process.exit(0);
}
const r = JSON.parse(readFileSync(file, 'utf8'));
let passed = r.numPassedTests;
let failed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
// The consumer app's checks and e2e tests (scripts/consumer.sh), when that run wrote them; an
// unreadable result is one failure.
const consumerFile = process.argv[3] ?? 'test-output/consumer.json';
if (existsSync(consumerFile)) {
  try {
    const c = JSON.parse(readFileSync(consumerFile, 'utf8'));
    const ok = Number.isInteger(c.passed) && Number.isInteger(c.failed);
    passed += ok ? c.passed : 0;
    failed += ok ? c.failed : 1;
  } catch {
    failed += 1;
  }
}
console.log(`${passed} passed, ${failed} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
