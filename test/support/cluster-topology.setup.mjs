// A `setupFiles` entry of the `integration-cluster` jest project: runs in each of its test files
// before the file itself, and tells test/support/redis-topology.ts to hand that file the cluster.
// Jest gives every test file its own copy of process.env, so the standalone project never sees this.
process.env.TEST_REDIS_TOPOLOGY = 'cluster';
