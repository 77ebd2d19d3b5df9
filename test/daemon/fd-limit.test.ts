/**
 * A daemon under a low open-file limit (`ulimit -n`): it says what is wrong when it cannot even
 * load, and when clients open more connections than it has descriptors, it refuses the extra
 * ones with an answer and a count instead of dropping them unanswered, and serves again once
 * they leave.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { eventually } from '../helpers/cluster.js';
import { CLI, CLI_NODE_ARGS } from '../helpers/cli.js';
import { freePort } from '../helpers/redis.js';
import { tempDir } from '../helpers/tmp.js';

/** `weft <args>` under `ulimit -n <n>` (lowering a limit needs no privilege). */
function underLimit(n: number, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(
    'sh',
    ['-c', `ulimit -n ${n} && exec "$0" "$@"`, process.execPath, ...CLI_NODE_ARGS, CLI, ...args],
    {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
}

/** A daemon started under `ulimit -n <n>`, once its API answers (killed when it does not start). */
async function daemonUnderLimit(
  n: number,
  env: NodeJS.ProcessEnv,
): Promise<{
  proc: ChildProcess;
  url: string;
  token: string;
  exited: Promise<number | null>;
  out: () => string;
}> {
  const proc = underLimit(n, ['daemon'], env);
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  proc.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.once('exit', (c) => r(c)));
  let url = '';
  try {
    await eventually(
      async () => {
        if (proc.exitCode !== null) throw new Error(`daemon exited: ${out}`);
        url = /API:\s+(http:\/\/\S+)/.exec(out)?.[1] ?? '';
        return url !== '';
      },
      60_000,
      'the daemon to start',
    );
  } catch (err) {
    proc.kill('SIGKILL');
    await exited;
    throw err;
  }
  const token = readFileSync(join(String(env.WEFT_DATA_DIR), 'api-token'), 'utf8').trim();
  return { proc, url, token, exited, out: () => out };
}

test('with too few file descriptors to load its modules, weft says to raise ulimit -n instead of naming an installed package as missing', () => {
  const t = tempDir('weft-fdload-');
  try {
    const r = spawnSync(
      'sh',
      ['-c', 'ulimit -n 48 && exec "$0" "$@"', process.execPath, ...CLI_NODE_ARGS, CLI, 'daemon'],
      {
        env: { ...process.env, HOME: t.dir, WEFT_DATA_DIR: join(t.dir, 'data'), WEFT_API_PORT: '0' },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(
      r.stderr,
      /^weft: .*for want of file descriptors: the open-file limit \(ulimit -n.*\) is too low for Weft; raise it/,
    );
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line, no stack: ${r.stderr}`);
  } finally {
    t.cleanup();
  }
});

test('under ulimit -n 256, connections past what the descriptors allow get 429 and are counted, and the API answers again once they leave', async () => {
  const t = tempDir('weft-fdconn-');
  const data = join(t.dir, 'data');
  const { proc, url, token, exited, out } = await daemonUnderLimit(256, {
    HOME: t.dir,
    WEFT_DATA_DIR: data,
    WEFT_API_PORT: '0',
    WEFT_COMPUTER_NAME: 'fds',
  });
  const sockets: Socket[] = [];
  try {
    const u = new URL(url);
    // More connections than the process has descriptors.
    const answers: string[] = [];
    await Promise.all(
      Array.from(
        { length: 400 },
        () =>
          new Promise<void>((resolve) => {
            const s = connect(Number(u.port), u.hostname);
            sockets.push(s);
            let text = '';
            s.on('data', (d) => (text += d));
            s.on('error', () => resolve());
            s.on('close', () => {
              answers.push(text);
              resolve();
            });
            s.on('connect', () => resolve());
          }),
      ),
    );
    await eventually(
      async () => answers.some((a) => a.includes('429')),
      60_000,
      'a connection over the cap answered',
    );
    const refusal = answers.find((a) => a.includes('429')) as string;
    assert.match(refusal, /WEFT_LIMIT/);
    for (const s of sockets) s.destroy();
    let health: { connections?: { refused: number; max: number } } = {};
    await eventually(
      async () => {
        try {
          const res = await fetch(`${url}/api/health`, {
            headers: { authorization: `Bearer ${token}` },
            signal: AbortSignal.timeout(5000),
          });
          if (res.status !== 200) return false;
          health = (await res.json()) as typeof health;
          return true;
        } catch {
          return false;
        }
      },
      60_000,
      'the API to answer once the clients left',
    );
    assert.ok(
      (health.connections?.max ?? 0) <= 128,
      `the cap is held to half the limit: ${JSON.stringify(health.connections)}`,
    );
    assert.ok(
      (health.connections?.refused ?? 0) > 0,
      `the refusals are counted: ${JSON.stringify(health.connections)}`,
    );
    proc.kill('SIGTERM');
    assert.equal(await exited, 0, out().slice(-2000));
  } finally {
    for (const s of sockets) s.destroy();
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
    t.cleanup();
  }
});

test('under ulimit -n 256, connections held open to the TLS mesh port leave the node descriptors: the API still answers', {
  skip: existsSync('/proc/self/fd') ? false : 'needs /proc',
}, async () => {
  const t = tempDir('weft-fdtls-');
  const data = join(t.dir, 'data');
  const tlsPort = await freePort();
  const { proc, url, token, exited, out } = await daemonUnderLimit(256, {
    HOME: t.dir,
    WEFT_DATA_DIR: data,
    WEFT_API_PORT: '0',
    WEFT_COMPUTER_NAME: 'fdtls',
    WEFT_MESH_PROVIDER: 'tls',
    WEFT_MESH_TLS_PORT: String(tlsPort),
  });
  const sockets: Socket[] = [];
  try {
    // More connections to the mesh port than the process has descriptors, held open (no handshake).
    await Promise.all(
      Array.from(
        { length: 300 },
        (_, i) =>
          new Promise<void>((resolve) => {
            // From several loopback addresses: one address gets at most 64 of them anyway.
            const s = connect({ port: tlsPort, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % 6)}` });
            sockets.push(s);
            s.on('error', () => resolve());
            s.on('connect', () => resolve());
            s.on('close', () => resolve());
          }),
      ),
    );
    // The provider closes those past its cap at once: the node keeps descriptors for its own
    // work (before, it sat at the limit until the 10 s handshake timeouts, answering nothing).
    // Read once the daemon has taken in the connections (the count holds still a moment).
    const fdCount = () => readdirSync(`/proc/${proc.pid}/fd`).length;
    let fds = fdCount();
    for (let same = 0; same < 3; ) {
      await new Promise((r) => setTimeout(r, 300));
      const now = fdCount();
      same = now === fds ? same + 1 : 0;
      fds = now;
    }
    assert.ok(fds <= 192, `${fds} descriptors open of 256 while the mesh port is flooded`);
    let status = 0;
    await eventually(
      async () => {
        try {
          const res = await fetch(`${url}/api/health`, {
            headers: { authorization: `Bearer ${token}` },
            signal: AbortSignal.timeout(5000),
          });
          status = res.status;
          await res.arrayBuffer();
          return true;
        } catch {
          return false;
        }
      },
      30_000,
      'the API to answer while the mesh port is flooded',
    );
    assert.equal(status, 200);
    proc.kill('SIGTERM');
    assert.equal(await exited, 0, out().slice(-2000));
  } finally {
    for (const s of sockets) s.destroy();
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
    t.cleanup();
  }
});
