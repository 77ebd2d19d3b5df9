/**
 * `weft peers pin` and `weft peers ignore` check the fingerprint before any request: a mistyped
 * one gets one line saying what a fingerprint is and where to find it (exit code 2), not the API
 * schema's regular expression (or, with no daemon, a complaint about the daemon).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { weft } from '../helpers/cli.js';

test('weft peers pin/ignore: a malformed fingerprint is a usage error that says what a fingerprint is', () => {
  const dir = mkdtempSync(join(tmpdir(), 'weft-peers-args-'));
  try {
    const env = { HOME: dir, WEFT_DATA_DIR: dir, WEFT_LOG_LEVEL: 'warn' };
    for (const args of [
      ['peers', 'pin', '123'],
      ['peers', 'pin', 'bc5a960653f3c51z', '--cluster', 'home'],
      ['peers', 'ignore', 'weft:ed25519:abc'],
    ]) {
      const r = weft(args, env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, /is not a fingerprint: 16 hex digits, as 'weft peers candidates' lists it/);
      assert.doesNotMatch(r.stderr, /\^\[0-9A-Fa-f\]/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
