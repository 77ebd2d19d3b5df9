#!/usr/bin/env node
// Copies the non-TypeScript files the code loads at run time (Redis Lua scripts, web assets)
// from src/ to dist/src/, keeping their paths. Runs after tsc in `npm run build`.
import { copyFileSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, extname, join, relative } from 'node:path';

const ASSETS = new Set(['.lua', '.html', '.css', '.js', '.cjs', '.svg']);
function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (ASSETS.has(extname(name)) && !name.endsWith('.ts')) out.push(p);
  }
  return out;
}
for (const f of walk('src')) {
  const to = join('dist', 'src', relative('src', f));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(f, to);
}
