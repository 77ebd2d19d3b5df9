import { readFileSync } from 'node:fs';
import { WEFT_ENTRY_MARK } from '../config/index.js';
import { untilAborted } from '../util/index.js';
import type { RedisClient } from './client.js';

/** The Lua scripts beside this file, by name (`trim-own-1.lua` → 'trim-own'), read once. */
const cache = new Map<string, string>();
function source(name: string, keys: number): string {
  const file = `${name}-${keys}.lua`;
  let s = cache.get(file);
  if (s === undefined) {
    s = readFileSync(new URL(`./${file}`, import.meta.url), 'utf8');
    cache.set(file, s);
  }
  return s;
}

/** Weft's Lua scripts; each touches only keys of one cluster slot. */
export type ScriptName = 'trim-own' | 'add-own' | 'claim' | 'release' | 'registry-beat' | 'registry-list' | 'registry-leave';

/** Runs one of Weft's Lua scripts (the file's header states its KEYS, ARGV and replies). */
export function runScript(client: RedisClient, name: ScriptName, keys: string[], args: Array<string | number>): Promise<unknown> {
  return client.eval(source(name, keys.length), keys.length, ...keys, ...args);
}

/** Where a stream's trim scan continues; keep one per stream. */
export interface TrimCursor {
  next: string;
}

/**
 * Deletes entries Weft wrote (they carry WEFT_ENTRY_MARK) that every consumer group on the
 * stream has acknowledged; other programs' entries stay, whatever their age. Scans at most
 * `scan` entries per call (a few ms of Redis time) and continues where the last call stopped.
 */
export async function trimOwnEntries(client: RedisClient, stream: string, cursor: TrimCursor, scan = 1000): Promise<number> {
  const [deleted, next] = (await runScript(client, 'trim-own', [stream], [cursor.next, scan, WEFT_ENTRY_MARK.field, WEFT_ENTRY_MARK.value])) as [number, string];
  cursor.next = next === '' ? '-' : next;
  return Number(deleted);
}

/**
 * Trims a stream's own acknowledged entries in rounds of `scan` (each a short Redis command,
 * so other clients are served in between) until the scan went round once, or `maxRounds`.
 */
export async function trimOwnStream(client: RedisClient, stream: string, cursor: TrimCursor, maxRounds = 1000): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < maxRounds; i++) {
    deleted += await trimOwnEntries(client, stream, cursor);
    if (cursor.next === '-') break;
  }
  return deleted;
}

/**
 * Closes a client politely within `ms`: QUIT when Redis answers, a plain disconnect when it
 * does not (Redis down), so a stop never waits for Redis to come back.
 */
export async function quitWithin(client: RedisClient | undefined, ms = 1000): Promise<void> {
  if (!client) return;
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    client.quit().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
  client.disconnect();
}

/** Hides a password in a Redis URL for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:@/]*):([^@/]*)@/, '//$1:***@');
}

/**
 * A Redis reply, or a rejection as soon as `signal` aborts. ioredis does not always reject a
 * command queued while it reconnects when the client is disconnected, so a reader that stops
 * while Redis is down must not wait on the reply alone.
 */
export function unlessAborted<T>(reply: Promise<T>, signal: AbortSignal): Promise<T> {
  return untilAborted(reply, signal);
}
