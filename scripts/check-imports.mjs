#!/usr/bin/env node
// Checks that no module reaches into another's internals: code in src/<module>/ imports another
// module only through its index (`../<other>/index.js`). Imports inside a module are free.
// Runs in `npm run lint`; prints each offending import and exits 1.
import { readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { walk } from './files.mjs';

const moduleOf = (file) => relative('src', file).split(sep)[0];
const bad = [];
let cross = 0;
for (const file of walk('src', '.ts')) {
  const mod = moduleOf(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.[^']+)'|import\('(\.[^']+)'\)/g)) {
    const spec = m[1] ?? m[2];
    const target = normalize(join(dirname(file), spec));
    const rel = relative('src', target);
    if (rel.startsWith('..')) continue;
    const parts = rel.split(sep);
    if (parts.length < 2 || parts[0] === mod) continue; // src/index.ts, src/version.ts, or the same module
    cross++;
    if (parts.length === 2 && parts[1] === 'index.js') continue;
    bad.push(`${file}: imports '${spec}' (reach ${parts[0]}/ through '${relative(dirname(file), join('src', parts[0], 'index.js'))}')`);
  }
}
if (bad.length > 0) {
  console.error(`${bad.length} of ${cross} cross-module imports reach past the module's index:\n${bad.join('\n')}`);
  process.exit(1);
}
console.log(`imports: ${cross} cross-module imports, all through the module's index`);
