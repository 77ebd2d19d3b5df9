/**
 * The CLI against a real daemon, as a script uses it: what `weft emit --json` answers, what a
 * wrong token says, and `weft identity show` once the daemon has stopped.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';

const TODO = 'domain.software-development.planning.todo.created';

test('weft emit --json, a wrong token, and weft identity show with the daemon stopped', async () => {
  const t = tempDir('weft-cli-access-');
  const env = {
    HOME: t.dir,
    WEFT_DATA_DIR: join(t.dir, 'data'),
    WEFT_API_PORT: '0',
    WEFT_COMPUTER_NAME: 'clibox',
    WEFT_LOG_LEVEL: 'warn',
    WEFT_URL: '',
    WEFT_TOKEN: '',
  };
  const d = await startDaemonProcess(env);
  try {
    // --json: the stored envelope and what became of it, so a script can tell a duplicate.
    type Answer = { envelope: { id: string; event: string }; outcome: { state: string; by?: string } };
    const first = weft(['--json', 'emit', TODO, '--payload', '{"slug":"cli-json","title":"t"}'], env);
    assert.equal(first.code, 0, first.stderr);
    const a = JSON.parse(first.stdout) as Answer;
    assert.equal(a.envelope.event, TODO);
    assert.match(a.envelope.id, /^[0-9a-f-]{36}$/);
    assert.ok(['applied', 'queued'].includes(a.outcome.state), a.outcome.state);
    // Only an emit the pipeline applies at once knows it dropped the event: a few tries on this idle daemon.
    let dup: Answer | undefined;
    for (let i = 0; i < 20 && dup?.outcome.state !== 'dropped'; i++) {
      const r = weft(['emit', TODO, '--payload', '{"slug":"cli-json","title":"t"}', '--json'], env);
      assert.equal(r.code, 0, r.stderr);
      dup = JSON.parse(r.stdout) as Answer;
    }
    assert.equal(dup?.outcome.state, 'dropped');
    assert.equal(dup?.outcome.by, 'dedup');
    assert.notEqual(dup?.envelope.id, a.envelope.id);

    // A value the API's schema refuses by pattern is described in words, not as a regular expression.
    const badType = weft(['emit', 'Worker.Crashed'], env);
    assert.equal(badType.code, 2);
    assert.match(
      badType.stderr,
      /field '\/event' must be an event type: lowercase words separated by dots, e\.g\. system\.worker\.crashed .*\(got "Worker\.Crashed"\)/,
    );
    const badSince = weft(['notifications', 'list', '--since', 'yesterday'], env);
    assert.equal(badSince.code, 2);
    assert.match(
      badSince.stderr,
      /field '\/since' must be ISO time, e\.g\. 2026-12-01 or 2026-12-01T08:00:00Z \(got "yesterday"\)/,
    );

    // A node without a mesh refuses recovery as a config that does not allow it (WEFT_CONFIG):
    // not WEFT_STOPPED, which a script reads as 'no daemon', nor an internal error with a log reference.
    for (const args of [
      ['recovery', 'status'],
      ['signals', 'cluster'],
      ['mounts', 'create', 'saturn', '--mode', 'invoke'],
    ]) {
      const r = weft(['--json', ...args], env);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      const e = (JSON.parse(r.stderr) as { error: { code: string; message: string } }).error;
      assert.equal(e.code, 'WEFT_CONFIG', args.join(' '));
      assert.doesNotMatch(e.message, /ref .* in the node's log/, args.join(' '));
    }

    // A body over the API's limit is named with the limit and a Weft code (it was Fastify's
    // 'Request body is too large', which the client took for WEFT_INTERNAL).
    const big = join(t.dir, 'big.json');
    writeFileSync(big, JSON.stringify({ worker: 'w', error: 'x'.repeat(9 * 1024 * 1024), restarts: 1 }));
    const tooLarge = weft(['--json', 'emit', 'system.worker.crashed', '--payload', `@${big}`], env);
    assert.equal(tooLarge.code, 1, tooLarge.stderr);
    assert.deepEqual(JSON.parse(tooLarge.stderr), {
      error: {
        code: 'WEFT_TOO_LARGE',
        message: 'the request body is larger than the API takes (8388608 bytes)',
      },
    });

    const shown = weft(['--json', 'identity', 'show'], env);
    assert.equal(shown.code, 0, shown.stderr);
    const id = JSON.parse(shown.stdout) as { computer: string; nodeId: string; fingerprint: string };
    assert.equal(id.computer, 'clibox');

    // A wrong token names where it came from, and where the right one is.
    const wrong = weft(['status'], { ...env, WEFT_URL: d.url, WEFT_TOKEN: 'not-the-token' });
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.stderr,
      new RegExp(
        `^weft: the daemon at ${d.url} refused the API token from WEFT_TOKEN \\(wrong bearer token\\): a daemon's token is the api-token file in its data dir`,
      ),
    );
    const wrongJson = weft(['--json', 'events', 'list'], {
      ...env,
      WEFT_URL: d.url,
      WEFT_TOKEN: 'not-the-token',
    });
    assert.equal(wrongJson.code, 1);
    assert.equal(
      (JSON.parse(wrongJson.stderr) as { error: { code: string } }).error.code,
      'WEFT_UNAUTHORIZED',
    );

    d.proc.kill('SIGTERM');
    assert.equal(await d.exited, 0);

    // The identity is a file: it shows without the daemon, the same as the daemon said.
    const offline = weft(['--json', 'identity', 'show'], env);
    assert.equal(offline.code, 0, offline.stderr);
    assert.deepEqual(JSON.parse(offline.stdout), {
      computer: 'clibox',
      cluster: null,
      nodeId: id.nodeId,
      fingerprint: id.fingerprint,
    });
    assert.match(offline.stderr, /no daemon answers; read from .*identity\.key/);
    const text = weft(['identity', 'show'], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`fingerprint: ${id.fingerprint}`));
    // Commands that need the daemon still say how to start it.
    const list = weft(['events', 'list'], env);
    assert.equal(list.code, 1);
    // api.port 0 (a port the daemon picks): the message names the data dir, not 'http://127.0.0.1:0'.
    assert.match(
      list.stderr,
      /^weft: no weft daemon runs on .*data \(api\.port is 0: .*\); start one with 'weft daemon'\n$/,
    );
  } finally {
    if (d.proc.exitCode === null) d.proc.kill('SIGKILL');
    t.cleanup();
  }
});

test('weft identity show on a computer where no daemon has run says there is no identity yet', () => {
  const t = tempDir('weft-cli-noid-');
  try {
    const r = weft(['identity', 'show'], {
      HOME: t.dir,
      WEFT_DATA_DIR: join(t.dir, 'data'),
      WEFT_LOG_LEVEL: 'warn',
      WEFT_URL: '',
      WEFT_TOKEN: '',
    });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /this node has no identity yet: .*'weft daemon' makes one at its first start/);
  } finally {
    t.cleanup();
  }
});
