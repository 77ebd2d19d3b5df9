// Shared by the scripts: every file below `dir` whose name ends with `suffix`.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export function walk(dir, suffix) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p, suffix));
    else if (name.endsWith(suffix)) out.push(p);
  }
  return out;
}
