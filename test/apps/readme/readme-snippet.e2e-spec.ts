import { readFileSync } from 'node:fs';
import { expect, it } from '@jest/globals';

// The README's "Protect your own Nest app" block is app.module.ts verbatim (less its two header
// lines; both import '@duo-nest/core'), so the compiled, booted file and the docs cannot drift.
it('should show app.module.ts verbatim in the README', () => {
  const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
  const section = readme.slice(readme.indexOf('## Protect your own Nest app'));
  const block = /```ts\n([\s\S]*?)\n```/.exec(section)?.[1];
  const file = readFileSync(new URL('./app.module.ts', import.meta.url), 'utf8')
    .split('\n')
    .slice(2)
    .join('\n')
    .trim();
  expect(block).toBe(file);
});
