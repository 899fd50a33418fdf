// A `setupFiles` entry of the `contract-in-memory` jest project: the contract suite (test/contract)
// runs on RedisCacheTestingModule's in-process store. No Redis: the test Redis is hidden from it, and
// REDIS_URL names a port nothing listens on, so anything that tried to connect would fail.
// Jest gives every test file its own copy of process.env, so other projects never see this.
process.env.CONTRACT_STORE = 'in-memory';
delete process.env.TEST_REDIS_URL;
process.env.REDIS_URL = 'redis://127.0.0.1:1';
