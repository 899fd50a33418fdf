// Jest runs the TypeScript sources as native ESM (node --experimental-vm-modules, see package.json).
// Relative imports are written with `.js` (NodeNext); the mapper strips it so ts-jest finds the .ts file.
// `nestjs-redis-cache` maps to lib/ so tests and the sample app use the one copy of the module.
const base = {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    '^nestjs-redis-cache$': '<rootDir>/lib/index.ts',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  },
};

export default {
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  collectCoverageFrom: ['lib/**/*.ts'],
  coverageThreshold: { global: { lines: 90 } },
  coverageReporters: ['text-summary', 'text', 'lcov'],
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.spec.ts'] },
    { ...base, displayName: 'integration', testMatch: ['<rootDir>/test/integration/**/*.spec.ts'] },
    { ...base, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'] },
  ],
};
