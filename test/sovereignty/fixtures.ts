import type { CartridgeManifest, CartridgePackage } from '../../src/sovereignty/index.js';

/** A valid manifest with overrides. */
export function manifest(overrides: Partial<CartridgeManifest> = {}): CartridgeManifest {
  return {
    name: 'echo',
    version: '1.0.0',
    author: 'test',
    description: 'a test cartridge',
    entryPoint: 'process',
    dependencies: [],
    consumes: ['*'],
    emits: [],
    ...overrides,
  };
}

/** A package from a name, its source, and manifest overrides. */
export function cartridge(
  name: string,
  source: string,
  overrides: Partial<CartridgeManifest> = {},
): CartridgePackage {
  return { manifest: manifest({ name, ...overrides }), source };
}

/** An envelope-shaped event. */
export function envelope(i: number, payload: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: `evt-${i}`,
    event: 'build.finished',
    version: 1,
    source: 'ci',
    timestamp: '2026-01-01T00:00:00.000Z',
    level: 2,
    domain: 'dev',
    entity: `build:${i}`,
    description: `build ${i} finished`,
    visibility: 'local',
    payload: { n: i, ...payload },
  };
}
