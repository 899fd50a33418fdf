import { Redis } from 'ioredis';
describe('harness', () => {
  it('reaches the test redis', async () => {
    const r = new Redis(process.env.TEST_REDIS_URL!);
    expect(await r.ping()).toBe('PONG');
    await r.quit();
  });
});
