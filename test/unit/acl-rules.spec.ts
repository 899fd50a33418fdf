// The README's "Least privilege" line is the one the integration-acl project tests: the rules of
// aclRulesFor('cache') (test/support/acl-user.ts), which every app of that project runs under.
import { readFileSync } from 'node:fs';
import { ACL_CLUSTER_COMMANDS, ACL_PASSWORD_PLACEHOLDER, aclRulesFor } from '../support/acl-user.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

describe('the ACL rules in the README', () => {
  it("is aclRulesFor('cache'), the only ACL SETUSER line there", () => {
    const lines = readme.split('\n').filter((line) => line.includes('ACL SETUSER'));
    expect(lines).toEqual([`ACL SETUSER cache-app ${aclRulesFor('cache')}`]);
  });

  it('names what a Cluster needs besides, as test/integration/sharded-pubsub.spec.ts grants it', () => {
    const section = readme.slice(readme.indexOf('## Least privilege'), readme.indexOf('## Metrics and observability'));
    for (const command of ACL_CLUSTER_COMMANDS) expect(section).toContain(`+${command}`);
  });

  it('logs in with the same placeholder password', () => {
    expect(readme).toContain(`redis://cache-app:${ACL_PASSWORD_PLACEHOLDER}@host:6379`);
  });

  it('gives only the namespace (after the keyPrefix) for keys and channels, glob characters escaped', () => {
    expect(aclRulesFor('shop', 'app1:')).toContain(' resetkeys ~app1:shop:* resetchannels &app1:shop:* -@all ');
    expect(aclRulesFor('{shop}', 'a*b?[c]:')).toContain(' ~a\\*b\\?\\[c\\]:{shop}:* ');
  });
});
