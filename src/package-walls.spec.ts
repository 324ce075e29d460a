// The walls between the packages (shared/docs/architecture.md): core and simulator import nothing of
// ours, audit only core's public face and internal entry, and no package reaches into the app,
// another package's files or the tests. The app never imports the simulator. Checked on the import
// specifiers of every source file.
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const ROOT = process.cwd();
const ALLOWED: Record<string, string[]> = {
  core: [],
  simulator: [],
  audit: ['@duo-nest/core', '@duo-nest/core/internal'],
  testing: ['@duo-nest/core', '@duo-nest/core/internal', '@duo-nest/simulator'],
};

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      return tsFiles(path);
    }
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Every module specifier of `import … from`, `export … from` and `import()`. */
function specifiers(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)'([^']+)'/gm)) {
    found.push(m[1]);
  }
  return found;
}

const isTestFile = (file: string) => file.endsWith('.spec.ts') || file.endsWith('spec-kit.ts');

describe('package walls', () => {
  it.each(Object.keys(ALLOWED))('packages/%s imports only what its wall allows', (name) => {
    const src = resolve(ROOT, 'packages', name, 'src');
    const breaches: string[] = [];
    for (const file of tsFiles(src)) {
      for (const spec of specifiers(file)) {
        const where = `${relative(ROOT, file)}: ${spec}`;
        if (spec.startsWith('.')) {
          const target = resolve(file, '..', spec);
          // Specs may use the shared test fakes; shipped files stay inside their own src/.
          const inside = target.startsWith(src + '/');
          const testHelper = isTestFile(file) && target.startsWith(resolve(ROOT, 'test') + '/');
          if (!inside && !testHelper) {
            breaches.push(where);
          }
        } else if (spec.startsWith('@duo-nest/') && !ALLOWED[name].includes(spec)) {
          breaches.push(where);
        }
      }
    }
    expect(breaches).toEqual([]);
  });

  it('the reference app never imports the simulator (nor the testing kit, which starts it)', () => {
    const breaches = tsFiles(resolve(ROOT, 'src'))
      .flatMap((file) => specifiers(file).map((spec) => ({ file, spec })))
      .filter(({ spec }) => spec.includes('simulator') || spec === '@duo-nest/testing')
      .map(({ file, spec }) => `${relative(ROOT, file)}: ${spec}`);
    expect(breaches).toEqual([]);
  });

  it('finds the imports it checks (the scan is not empty)', () => {
    const audit = tsFiles(resolve(ROOT, 'packages/audit/src')).flatMap(specifiers);
    expect(audit).toContain('@duo-nest/core');
    expect(audit).toContain('@duo-nest/core/internal');
    const testing = tsFiles(resolve(ROOT, 'packages/testing/src')).flatMap(specifiers);
    expect(testing).toEqual(expect.arrayContaining(['@duo-nest/simulator', '@duo-nest/core']));
    expect(tsFiles(resolve(ROOT, 'src')).flatMap(specifiers)).toContain('@duo-nest/core');
  });
});
