// Jest runs in ESM mode (see ../shared/docs/toolchain.md): `node --experimental-vm-modules`.
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  // The packages run from their sources (no build needed): @duo-nest/<name> and its /internal
  // subpath map to packages/<name>/src, as the root tsconfig's paths do for the type-check.
  moduleNameMapper: {
    '^@duo-nest/([a-z-]+)$': '<rootDir>/packages/$1/src/index.ts',
    '^@duo-nest/([a-z-]+)/internal$': '<rootDir>/packages/$1/src/internal.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  testEnvironment: 'node',
};

/** @type {import('jest').Config} */
export default {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/src/**/*.spec.ts', '<rootDir>/packages/*/src/**/*.spec.ts'],
    },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
  ],
};
