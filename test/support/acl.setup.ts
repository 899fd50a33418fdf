// A `setupFilesAfterEnv` entry of the `integration-acl` jest project: its test files' createTestApp
// (test-app.ts) connects each app as a fresh Redis user holding only `aclRulesFor(namespace)`
// (acl-user.ts), the rules the README gives. Jest gives every test file its own process.env.
import { Redis } from 'ioredis';
import { deleteAclUsersOfThisProcess } from './acl-user.js';

process.env.TEST_REDIS_ACL = '1';

// app.close() deletes its user; these are the users of apps a failed test never closed.
afterAll(async () => {
  const admin = new Redis(process.env.TEST_REDIS_URL!, { maxRetriesPerRequest: 1 });
  try {
    await deleteAclUsersOfThisProcess(admin);
  } finally {
    admin.disconnect();
  }
});
