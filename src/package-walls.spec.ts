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

/**
 * Specifiers that reach the declarations: static `import … from`, `export … from`, bare
 * `import '…'`, and `import('…')` in a type (`import('x').T`, `typeof import('x')`); not a
 * run-time `await import('…')`.
 */
function peerSpecifiers(text: string): string[] {
  const patterns = [
    /(?:\bfrom\s*|^\s*import\s+)'([^']+)'/gm,
    /\bimport\s*\(\s*'([^']+)'\s*\)\s*\./g,
    /\btypeof\s+import\s*\(\s*'([^']+)'/g,
  ];
  return patterns.flatMap((re) => [...text.matchAll(re)].map((m) => m[1]));
}

/** A package's optional peers that its users may leave out (`@types/*` and real dependencies not). */
function optionalPeers(name: string): string[] {
  const pkg = JSON.parse(readFileSync(resolve(ROOT, 'packages', name, 'package.json'), 'utf8')) as {
    dependencies?: Record<string, string>;
    peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  };
  return (
    Object.entries(pkg.peerDependenciesMeta ?? {})
      // A `@types/*` peer only types a run-time module the user already has (express).
      .filter(([peer, meta]) => meta.optional && !peer.startsWith('@types/'))
      .map(([peer]) => peer)
      // Also a real dependency: always installed, so its types are always there.
      .filter((peer) => !(peer in (pkg.dependencies ?? {})))
  );
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

  // A consumer who leaves out an optional peer and compiles with `skipLibCheck: false` would fail
  // on any declaration that names it (TS2307): shipped files may load one at run time
  // (`await import('pg')`) but import nothing of it statically, types included.
  it.each(Object.keys(ALLOWED))(
    'packages/%s: shipped files import no optional peer, not even its types',
    (name) => {
      const optional = optionalPeers(name);
      const names = (spec: string) => optional.some((p) => spec === p || spec.startsWith(`${p}/`));
      const breaches: string[] = [];
      for (const file of tsFiles(resolve(ROOT, 'packages', name, 'src'))) {
        if (isTestFile(file)) {
          continue;
        }
        for (const spec of peerSpecifiers(readFileSync(file, 'utf8')).filter(names)) {
          breaches.push(`${relative(ROOT, file)}: ${spec}`);
        }
      }
      expect(breaches).toEqual([]);
    },
  );

  it('the optional-peer rule sees type-only imports and import() in a type, not a run-time import()', () => {
    expect(peerSpecifiers("import type { Cluster, Redis } from 'ioredis';")).toEqual(['ioredis']);
    expect(peerSpecifiers("export type { Pool } from 'pg';")).toEqual(['pg']);
    expect(peerSpecifiers("import 'better-sqlite3';")).toEqual(['better-sqlite3']);
    expect(peerSpecifiers("let p: import('pg').Pool;")).toEqual(['pg']);
    expect(peerSpecifiers("type M = typeof import('ioredis');")).toEqual(['ioredis']);
    // Loading an optional peer at run time names none of its types in the declarations.
    expect(peerSpecifiers("const pg = await import('pg');")).toEqual([]);
    expect(optionalPeers('core')).toContain('ioredis');
    expect(optionalPeers('audit')).toEqual(expect.arrayContaining(['pg', 'better-sqlite3']));
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
