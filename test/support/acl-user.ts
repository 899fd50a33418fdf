// The least-privileged Redis user the module can run as (README, "Least privilege"), and what the
// `integration-acl` jest project needs to run specs as such a user (test-app.ts, acl.setup.ts).
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** Stands for the user's password in the rules the README shows. */
export const ACL_PASSWORD_PLACEHOLDER = 'PASSWORD';

/**
 * The commands the module needs, by what sends them: found by running the core specs as a user
 * holding `-@all` and adding what `ACL LOG` showed refused, until nothing was. ZREM is the one no
 * spec reaches that way (MARK_PREFIX past its cap of markers): test/acl/least-privilege.spec.ts
 * does. QUIT (closing) and AUTH need no permission.
 */
export const ACL_COMMAND_GROUPS = {
  /** ioredis connecting: its ready check (INFO) and `connectionName` (CLIENT SETNAME). */
  connection: ['info', 'client|setname'],
  /** Reads, tag epochs (MGET), markers (SET, EXISTS), evictions and `reclaim` (UNLINK, SCAN), the Lua scripts. */
  module: ['get', 'mget', 'set', 'exists', 'unlink', 'scan', 'evalsha', 'eval'],
  /** Inside those scripts: Redis 7 checks what a script calls against the caller's ACL too. */
  scripts: [
    'getrange',
    'setrange',
    'del',
    'pttl',
    'pexpire',
    'time',
    'zadd',
    'zrange',
    'zrem',
    'zcard',
    'zremrangebylex',
  ],
  /** Lease releases, prefix and L1 invalidations, the subscription's heartbeat. */
  pubsub: ['publish', 'subscribe'],
} as const;

/**
 * What a user needs besides on a Redis 7+ Cluster, where the module announces by sharded pub/sub
 * (`shardedPubSub`): test/integration/sharded-pubsub.spec.ts runs an app as such a user.
 */
export const ACL_CLUSTER_COMMANDS = ['cluster|slots', 'cluster|info', 'readonly', 'spublish', 'ssubscribe'] as const;

/** `literal` as an ACL key or channel pattern that matches it and nothing else. */
function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, '\\$&');
}

/** The rules of `ACL SETUSER <name> ...`, one argument each. */
function aclRuleList(namespace: string, keyPrefix: string, password: string): string[] {
  // Keys and channels both start with `${keyPrefix}${namespace}:` (core/bookkeeping-keys.ts).
  const scope = `${escapeGlob(keyPrefix + namespace)}:*`;
  const commands = Object.values(ACL_COMMAND_GROUPS).flat();
  return [
    'on',
    `>${password}`,
    'resetkeys',
    `~${scope}`,
    'resetchannels',
    `&${scope}`,
    '-@all',
    ...commands.map((command) => `+${command}`),
  ];
}

/**
 * The rules of a user that can run the cache of `namespace` (with ioredis's `keyPrefix`, if any) and
 * nothing else, as `ACL SETUSER <name> <rules>` takes them; its password is ACL_PASSWORD_PLACEHOLDER.
 */
export function aclRulesFor(namespace: string, keyPrefix = ''): string {
  return aclRuleList(namespace, keyPrefix, ACL_PASSWORD_PLACEHOLDER).join(' ');
}

/** The users createAclUser makes start with this and the process id (see deleteAclUsersOfThisProcess). */
const USER_PREFIX = 'nrc-acl-test-';

/**
 * Creates a user holding exactly `aclRulesFor(namespace, keyPrefix)`, with `password`, through
 * `admin`; returns the URL that logs in as it on admin's host and port.
 */
export async function createAclUser(
  admin: Redis,
  namespace: string,
  password: string,
  keyPrefix = '',
): Promise<string> {
  const name = `${USER_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`;
  await admin.call('ACL', 'SETUSER', name, 'reset', ...aclRuleList(namespace, keyPrefix, password));
  const { host = '127.0.0.1', port = 6379 } = admin.options;
  return `redis://${encodeURIComponent(name)}:${encodeURIComponent(password)}@${host}:${port}`;
}

/** The user name in a URL createAclUser returned. */
export function aclUserOf(url: string): string {
  return decodeURIComponent(new URL(url).username);
}

/**
 * What Redis refused `user` (ACL LOG): `context object` (`toplevel get`, `lua zrem`...), with the
 * username in each, so what a test expects refused can be told apart. CLIENT SETINFO is left out:
 * ioredis sends it to Redis 7.2+ and ignores its failure (the README says to grant it there).
 */
export async function refusedTo(admin: Redis, user: string): Promise<string[]> {
  const entries = (await admin.call('ACL', 'LOG', '1000')) as unknown[][];
  const refused: string[] = [];
  for (const entry of entries) {
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < entry.length; i += 2) fields.set(String(entry[i]), entry[i + 1]);
    if (fields.get('username') !== user || fields.get('object') === 'client|setinfo') continue;
    refused.push(`${String(fields.get('reason'))}: ${String(fields.get('context'))} ${String(fields.get('object'))}`);
  }
  return refused;
}

/** Deletes the users this process made (those of apps a failed test never closed). */
export async function deleteAclUsersOfThisProcess(admin: Redis): Promise<void> {
  const users = (await admin.call('ACL', 'USERS')) as string[];
  const mine = users.filter((user) => user.startsWith(`${USER_PREFIX}${process.pid}-`));
  if (mine.length > 0) await admin.call('ACL', 'DELUSER', ...mine);
}

/**
 * `test`, or `it.skip` in the integration-acl project: for a test that sends, through the module's
 * own client, commands the module does not need and so the ACL user does not have (`reason`).
 */
export function notAsAclUser(reason: string, test: jest.It = it): jest.It {
  if (!reason) throw new Error('notAsAclUser needs the commands the test sends that the ACL user lacks');
  return process.env.TEST_REDIS_ACL ? it.skip : test;
}
