// A `setupFiles` entry of the `contract` jest project: the contract suite (test/contract) runs on the
// real module over the standalone test Redis (TEST_REDIS_URL, from the global setup).
// Jest gives every test file its own copy of process.env, so other projects never see this.
process.env.CONTRACT_STORE = 'redis';
