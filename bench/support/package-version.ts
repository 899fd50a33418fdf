import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const require = createRequire(import.meta.url);

/**
 * The installed version of `name`. Read from the package.json next to the resolved entry point,
 * since packages whose `exports` hide `./package.json` cannot be asked for it directly.
 */
export function packageVersion(name: string): string {
  const entry = require.resolve(name);
  const marker = `node_modules/${name}/`;
  const root = entry.slice(0, entry.lastIndexOf(marker) + marker.length);
  return (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
}
