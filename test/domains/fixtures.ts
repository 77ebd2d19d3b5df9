import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CartridgeManifest } from '../../src/sovereignty/index.js';

/** The type the domain tests emit: a todo of the software-development catalog. */
export const TODO = 'domain.software-development.planning.todo.created';

/** A todo's emit input. */
export function todo(slug: string, extra: Record<string, unknown> = {}): { event: string; payload: Record<string, unknown> } & Record<string, unknown> {
  return { event: TODO, payload: { slug, title: `todo ${slug}` }, ...extra };
}

/** Writes `<dataDir>/company/domains/<name>/domain.toml`. */
export function writeDomain(dataDir: string, name: string, toml = ''): string {
  const dir = join(dataDir, 'company', 'domains', name);
  mkdirSync(join(dir, 'cartridges'), { recursive: true });
  writeFileSync(join(dir, 'domain.toml'), toml);
  return dir;
}

/** Writes a cartridge folder (manifest.json + cartridge.js) under `<pipelineDir>/cartridges/<name>/`. */
export function writeCartridge(pipelineDir: string, name: string, source: string, manifest: Partial<CartridgeManifest> = {}): void {
  const dir = join(pipelineDir, 'cartridges', name);
  mkdirSync(dir, { recursive: true });
  const m: CartridgeManifest = {
    name,
    version: '1.0.0',
    author: 'test',
    description: `test cartridge ${name}`,
    entryPoint: 'process',
    dependencies: [],
    consumes: ['domain.software-development.*'],
    emits: ['domains.alert'],
    ...manifest,
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
  writeFileSync(join(dir, 'cartridge.js'), source);
}

/** Source of a cartridge that alerts with `title` (and the event's slug in the body). */
export function alerting(title: string): string {
  return `function process(event, ctx) { ctx.emit('domains.alert', { title: ${JSON.stringify(title)}, body: String(event.payload.slug) }); return event; }`;
}

/** Source of a cartridge that busy-waits `ms`, then alerts with its start and end times. */
export function busy(title: string, ms: number): string {
  return `function process(event, ctx) {
  var start = Date.now(); while (Date.now() - start < ${ms}) {}
  ctx.emit('domains.alert', { title: ${JSON.stringify(title)}, body: JSON.stringify({ start: start, end: Date.now() }) });
  return event;
}`;
}
