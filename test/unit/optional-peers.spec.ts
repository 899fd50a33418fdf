// The optional peers (@opentelemetry/*, prom-client, @nestjs/terminus) are loaded only by their own
// sub-path (nestjs-redis-cache/opentelemetry, /prometheus, /health): an app that imports the package
// root without them installed must not fail to start. Read from the sources' import statements.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const LIB = fileURLToPath(new URL('../../lib/', import.meta.url));
/** The folders allowed to import an optional peer: each imports only its own, and nothing else imports them. */
const OPTIONAL_FOLDERS = ['opentelemetry', 'prometheus', 'health'];
const OPTIONAL_PEER = /^(@opentelemetry\/|prom-client$|prom-client\/|@nestjs\/terminus$|@nestjs\/terminus\/)/;

/** Every module specifier a source file names: static and type imports, re-exports, import(), require(). */
function specifiersOf(source: string): string[] {
  const patterns = [
    /^\s*(?:import|export)\s[^'"]*?\sfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
    /\brequire\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  return patterns.flatMap((pattern) => [...source.matchAll(pattern)].map((match) => match[1]!));
}

function sourceFiles(folder: string): string[] {
  return readdirSync(folder, { withFileTypes: true }).flatMap((entry) => {
    const path = join(folder, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.(ts|mts|cts|js|mjs|cjs)$/.test(entry.name) ? [path] : [];
  });
}

/** The optional folder a path of lib/ lies in, if any. */
function optionalFolderOf(path: string): string | undefined {
  const [top] = relative(LIB, path).split(/[\\/]/);
  return OPTIONAL_FOLDERS.find((folder) => folder === top);
}

describe('optional peers', () => {
  const files = sourceFiles(LIB);

  it('finds the sources and their imports', () => {
    expect(files.length).toBeGreaterThan(50);
    expect(specifiersOf(readFileSync(join(LIB, 'index.ts'), 'utf8'))).toContain('./redis-cache.module.js');
  });

  it('the scanner sees every form of import', () => {
    const source = [
      "import { trace } from '@opentelemetry/api';",
      "import type { Registry } from 'prom-client';",
      'import {',
      '  HealthIndicatorService,',
      "} from '@nestjs/terminus';",
      "export { x } from './opentelemetry/index.js';",
      "import 'prom-client/side-effect';",
      "const api = await import('@opentelemetry/api');",
      "const terminus = require('@nestjs/terminus');",
      "// a comment that mentions from '@opentelemetry/api' is not an import",
    ].join('\n');
    expect(specifiersOf(source)).toEqual([
      '@opentelemetry/api',
      'prom-client',
      '@nestjs/terminus',
      './opentelemetry/index.js',
      'prom-client/side-effect',
      '@opentelemetry/api',
      '@nestjs/terminus',
    ]);
  });

  it('nothing outside lib/opentelemetry, lib/prometheus and lib/health imports an optional peer or those folders', () => {
    const offences: string[] = [];
    for (const file of files) {
      if (optionalFolderOf(file)) continue;
      for (const specifier of specifiersOf(readFileSync(file, 'utf8'))) {
        const into = specifier.startsWith('.') ? optionalFolderOf(resolve(dirname(file), specifier)) : undefined;
        if (OPTIONAL_PEER.test(specifier) || into) offences.push(`${relative(LIB, file)} imports '${specifier}'`);
      }
    }
    expect(offences).toEqual([]);
  });

  it('each optional folder imports no other optional peer than its own', () => {
    const own: Record<string, RegExp> = {
      opentelemetry: /^@opentelemetry\//,
      prometheus: /^prom-client(\/|$)/,
      health: /^@nestjs\/terminus(\/|$)/,
    };
    const offences: string[] = [];
    for (const file of files) {
      const folder = optionalFolderOf(file);
      if (!folder) continue;
      for (const specifier of specifiersOf(readFileSync(file, 'utf8'))) {
        const into = specifier.startsWith('.') ? optionalFolderOf(resolve(dirname(file), specifier)) : undefined;
        const foreignPeer = OPTIONAL_PEER.test(specifier) && !own[folder]!.test(specifier);
        if (foreignPeer || (into && into !== folder)) offences.push(`${relative(LIB, file)} imports '${specifier}'`);
      }
    }
    expect(offences).toEqual([]);
  });
});
