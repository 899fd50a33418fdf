// Jest runs the TypeScript sources as native ESM (node --experimental-vm-modules, see package.json).
// Relative imports are written with `.js` (NodeNext); the mapper strips it so ts-jest finds the .ts file.
// `nestjs-redis-cache` maps to lib/ so tests and the sample app use the one copy of the module.
const base = {
  preset: 'ts-jest/presets/default-esm',
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  // The compat apps have package.json files and specs of their own, run by `npm run compat`.
  modulePathIgnorePatterns: ['<rootDir>/tools/compat/apps/'],
  moduleNameMapper: {
    '^(\\.{1,2}/.*)\\.js$': '$1',
    '^nestjs-redis-cache$': '<rootDir>/lib/index.ts',
    '^nestjs-redis-cache/(health|prometheus|opentelemetry)$': '<rootDir>/lib/$1/index.ts',
  },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: '<rootDir>/tsconfig.json' }],
  },
};

/** Ignore patterns for spec files of test/integration, by file name. */
const integrationSpecs = (names) => names.map((name) => `<rootDir>/test/integration/${name.replace(/\./g, '\\.')}$`);

// Specs that build Redis Clusters of their own: they run once, in the cluster project.
const CLUSTER_ONLY = [
  'cluster.spec.ts', // the module on a 3-primary cluster of its own (keyPrefix, CROSSSLOT-prone batches)
  'cluster-failover.spec.ts', // SIGKILL of a primary under load, on a 3+3 cluster of its own
  'sharded-pubsub.spec.ts', // SPUBLISH/SSUBSCRIBE exist on a Cluster only
  'sharded-pubsub-failover.spec.ts', // SIGKILL of the namespace's primary, on a 3+3 cluster of its own
];

// Specs that run once, in the standalone project.
const STANDALONE_ONLY = [
  // Their claim is about one redis-server process, which each starts and breaks as a whole: there is
  // no cluster equivalent of it here. What such a failure means on a cluster (a primary lost, its
  // replica promoted) is what cluster-failover.spec.ts asserts.
  'fail-open.spec.ts', // SIGKILL of the server, restart on the same port, boot while nothing listens there
  'fail-open-slow.spec.ts', // CLIENT PAUSE / DEBUG SLEEP of the whole server
  'fail-open-invalidations.spec.ts', // CLIENT PAUSE of the whole server to lose writes, then its recovery
  // Keyspace notifications of one server (--notify-keyspace-events) watch the deletion. The garbage
  // path itself runs on the cluster too: metrics.spec.ts ("counts an undecodable payload as an error").
  'fail-open-garbage.spec.ts',
  // Its own Sentinel deployment (a primary, a replica, three sentinels), whatever the project: a
  // second run would test the same thing again.
  'sentinel.spec.ts',
  'tls-harness.spec.ts', // a TLS redis-server of its own (test/support/tls-redis.ts): no cluster in it
  'hostile-input/silent-subscriber.spec.ts', // a freezing TCP proxy in front of a redis-server of its own
  'hostile-input/failed-catch-up.spec.ts', // CLIENT PAUSE of a redis-server of its own, one subscriber killed
  'hostile-input/tls-and-credentials.spec.ts', // TLS and password-protected redis-servers of its own
];

// Core specs, run again as a Redis user holding only the README's ACL rules ("Least privilege"):
// test/support/acl.setup.ts makes createTestApp connect each app as a fresh such user, and an app
// fails its test if Redis refused that user anything. Not here: specs whose apps use a Redis of
// their own or run admin commands on the module's client, and the slow ones that add no command.
const ACL_SPECS = [
  'cacheable.spec.ts',
  'cache-service.spec.ts',
  'decorators.spec.ts',
  'tags.spec.ts',
  'prefix-generations.spec.ts',
  'lease-release.spec.ts',
  'single-flight.spec.ts',
  'read-after-write.spec.ts',
  'ttl.spec.ts',
  'metrics.spec.ts',
  'pipelining.spec.ts',
  'keys.spec.ts',
  'unstorable-writes.spec.ts',
  'batch-reads.spec.ts',
  'tag-epochs.spec.ts',
];

// The integration suite: on one standalone redis-server (the global setup's), and on a 3-primary,
// 3-replica Redis Cluster (the cluster global setup's). Jest runs a project's globalSetup only when
// that project has tests to run, so `--selectProjects integration` starts no cluster.
const integration = { ...base, testMatch: ['<rootDir>/test/integration/**/*.spec.ts'] };

// The public contract (CONTRACT.md and the README's semantics), one suite run twice: on the real module
// over the standalone test Redis (TEST_REDIS_URL, from the global setup above), and on
// RedisCacheTestingModule's in-process store with no Redis at all, so the two cannot drift apart.
// test/contract/contract-app.ts boots either, as the project's setup file says.
const contract = { ...base, testMatch: ['<rootDir>/test/contract/**/*.spec.ts'] };

export default {
  // One test file at a time (2 cores here; many specs measure timing), in a worker process that is
  // replaced once it holds this much: each ESM test file leaves memory behind in jest's module
  // registry, and past ~170 files one long-lived process spends its time collecting garbage.
  maxWorkers: 1,
  workerIdleMemoryLimit: '1GB',
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  collectCoverageFrom: ['lib/**/*.ts'],
  coverageThreshold: { global: { lines: 90 } },
  coverageReporters: ['text-summary', 'text', 'lcov'],
  projects: [
    { ...base, displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.spec.ts'] },
    {
      ...integration,
      displayName: 'integration',
      testPathIgnorePatterns: ['/node_modules/', ...integrationSpecs(CLUSTER_ONLY)],
    },
    {
      ...integration,
      displayName: 'integration-cluster',
      testPathIgnorePatterns: ['/node_modules/', ...integrationSpecs(STANDALONE_ONLY)],
      globalSetup: '<rootDir>/test/support/cluster-global-setup.mjs',
      globalTeardown: '<rootDir>/test/support/cluster-global-teardown.mjs',
      // Tells test/support/redis-topology.ts (per test file) to use the cluster.
      setupFiles: ['<rootDir>/test/support/cluster-topology.setup.mjs'],
    },
    {
      // The standalone integration suite again on ioredis 5, the older release the peer range admits
      // (installed as `ioredis5`). The projects above run on ioredis 6, whose default is RESP3.
      ...integration,
      displayName: 'integration-ioredis5',
      moduleNameMapper: { ...base.moduleNameMapper, '^ioredis$': 'ioredis5' },
      testPathIgnorePatterns: ['/node_modules/', ...integrationSpecs(CLUSTER_ONLY)],
      setupFiles: ['<rootDir>/test/support/ioredis5.setup.mjs'],
    },
    {
      ...base,
      displayName: 'integration-acl',
      testMatch: [...ACL_SPECS.map((name) => `<rootDir>/test/integration/${name}`), '<rootDir>/test/acl/**/*.spec.ts'],
      setupFilesAfterEnv: ['<rootDir>/test/support/acl.setup.ts'],
    },
    { ...contract, displayName: 'contract', setupFiles: ['<rootDir>/test/support/contract-redis.setup.mjs'] },
    {
      ...contract,
      displayName: 'contract-in-memory',
      setupFiles: ['<rootDir>/test/support/contract-in-memory.setup.mjs'],
    },
    { ...base, displayName: 'e2e', testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'] },
  ],
};
