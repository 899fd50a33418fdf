// Checks that every README snippet marked `<!-- compat: PATH -->` is a copy of (a part of) that
// compat app file, so the README shows code the compat matrix compiles and runs. Indentation is
// ignored, so a snippet may be an excerpt of a block. Usage: node tools/compat/readme-snippets.mjs
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const marked = /<!-- compat: (\S+) -->\n```\w*\n([\s\S]*?)\n```/g;
const lines = (text) => text.split('\n').map((line) => line.trim());

let count = 0;
const problems = [];
for (const [, path, snippet] of readme.matchAll(marked)) {
  count++;
  const file = lines(readFileSync(join(root, path), 'utf8'));
  const wanted = lines(snippet);
  const found = file.some((_, start) => wanted.every((line, i) => file[start + i] === line));
  if (!found) problems.push(`README snippet marked ${path} is not a copy of a part of that file`);
}
if (count === 0) problems.push('README has no `<!-- compat: PATH -->` snippets: the marker format changed?');
for (const problem of problems) console.error(problem);
if (problems.length > 0) process.exit(1);
console.log(`README: ${count} snippets are copies of compat app files`);
