/**
 * Shell observation end to end, as a user sets it up: `weft observe install --shell X --write`
 * with the defaults (the spool under $XDG_RUNTIME_DIR), a real daemon, and a real bash, zsh and
 * fish in a pseudo-terminal typing 1,000 commands — half of them while the daemon is stopped.
 * Every command is found once, classified, with its secrets redacted; nothing is lost.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { WeftClient } from '../../src/client/index.js';
import { readToken } from '../../src/config/index.js';
import type { Envelope } from '../../src/envelope/index.js';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { runInPty } from '../helpers/pty-shell.js';
import { tempDir } from '../helpers/tmp.js';

const TOTAL = 1000;
const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

/** The i-th command line a user types, and what must be stored for it. */
function line(i: number): { typed: string; stored: string | RegExp; category: string; risk?: string } {
  switch (i % 5) {
    case 0:
      return { typed: `git commit -m "change ${i}"`, stored: `git commit -m "change ${i}"`, category: 'git' };
    case 1:
      return { typed: `docker run --rm img${i}`, stored: `docker run --rm img${i}`, category: 'docker' };
    case 2:
      return { typed: `kubectl delete pod web-${i}`, stored: `kubectl delete pod web-${i}`, category: 'kubernetes', risk: 'high' };
    case 3: {
      const token = `ghp_${String(i).padStart(6, '0')}abcdefghijklmnopqrstuvwxyz0123`;
      return { typed: `export GITHUB_TOKEN=${token}`, stored: /^export GITHUB_TOKEN=\[REDACTED:[a-z-]+\]$/, category: 'other' };
    }
    default:
      return { typed: `echo step-${i} >/dev/null`, stored: `echo step-${i} >/dev/null`, category: 'other' };
  }
}

/** Functions standing in for the tools, so the session needs none installed (and never forks for them). */
const SHIMS: Record<string, string> = {
  bash: 'git() { :; }; docker() { :; }; kubectl() { :; }',
  zsh: 'git() { :; }; docker() { :; }; kubectl() { :; }',
  fish: 'function git; end; function docker; end; function kubectl; end',
};

async function allCommands(api: WeftClient): Promise<Array<{ command: string; category: string; risk_level: string; shell: string }>> {
  const out: Array<{ command: string; category: string; risk_level: string; shell: string }> = [];
  let cursor: number | undefined;
  for (;;) {
    const page = await api.request<{ items: Array<{ seq: number; envelope: Envelope }>; nextCursor: number | null }>(
      'GET',
      `/api/events?type=terminal.command&limit=1000${cursor ? `&cursor=${cursor}` : ''}`,
    );
    for (const e of page.items) out.push(e.envelope.payload as { command: string; category: string; risk_level: string; shell: string });
    if (!page.nextCursor) return out;
    cursor = page.nextCursor;
  }
}

for (const shell of ['bash', 'zsh', 'fish'] as const) {
  test(`${shell}: 1,000 commands typed through the installed hook are all recorded once, classified and redacted, also while the daemon is down`, { skip: has(shell) ? false : `${shell} is not installed (apt-get install ${shell})` }, async () => {
    const t = tempDir(`weft-observe-${shell}-`);
    const home = t.dir;
    const runtime = join(home, 'run');
    mkdirSync(runtime, { recursive: true, mode: 0o700 });
    // Nothing but what the README says: HOME, and the runtime dir a desktop session has.
    const env = { HOME: home, XDG_RUNTIME_DIR: runtime, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: `obs-${shell}`, WEFT_LOG_LEVEL: 'warn' };
    let daemon: Awaited<ReturnType<typeof startDaemonProcess>> | undefined;
    try {
      const install = weft(['observe', 'install', '--shell', shell, '--write'], env);
      assert.equal(install.code, 0, install.stderr);
      assert.match(install.stdout, /installed: the weft observe hook in/);
      assert.match(install.stdout, new RegExp(`${runtime}/weft-spool`));
      const again = weft(['observe', 'install', '--shell', shell, '--write'], env);
      assert.match(again.stdout, /unchanged/);

      const dataDir = join(home, '.weft', 'data');
      const start = async () => {
        daemon = await startDaemonProcess(env);
        return new WeftClient({ url: daemon.url, token: readToken(dataDir) as string });
      };
      let api = await start();
      const lines = Array.from({ length: TOTAL }, (_, i) => line(i));
      const shellEnv = { XDG_RUNTIME_DIR: runtime };
      await runInPty(shell, { home, env: shellEnv, lines: [SHIMS[shell] as string, ...lines.slice(0, TOTAL / 2).map((l) => l.typed)], timeoutMs: 180_000 });
      // The daemon stops; the shell goes on.
      daemon?.proc.kill('SIGTERM');
      assert.equal(await daemon?.exited, 0);
      await runInPty(shell, { home, env: shellEnv, lines: lines.slice(TOTAL / 2).map((l) => l.typed), timeoutMs: 180_000 });
      api = await start();
      let cmds: Awaited<ReturnType<typeof allCommands>> = [];
      const deadline = Date.now() + 60_000;
      for (;;) {
        await api.request('POST', '/api/privacy/observe/scan');
        // The helper's own lines: the marker and (fish records it) the closing `exit`.
        cmds = (await allCommands(api)).filter((c) => !c.command.startsWith('true >') && c.command !== 'exit' && c.command !== SHIMS[shell]);
        if (cmds.length >= TOTAL || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const typed = new Set(lines.map((l) => (typeof l.stored === "string" ? l.stored : "")));
      assert.equal(cmds.length, TOTAL, `every command, once (got ${cmds.length}; others: ${JSON.stringify(cmds.filter((c) => !typed.has(c.command) && !c.command.startsWith("export GITHUB")).map((c) => c.command).slice(0, 5))})`);
      // The log lists newest first.
      cmds.reverse();
      for (const [i, l] of lines.entries()) {
        const c = cmds[i];
        assert.ok(c, `command ${i}`);
        if (typeof l.stored === 'string') assert.equal(c.command, l.stored, `command ${i} as typed`);
        else assert.match(c.command, l.stored, `command ${i} redacted`);
        assert.equal(c.category, l.category, `command ${i}: ${c.command}`);
        if (l.risk) assert.equal(c.risk_level, l.risk, `command ${i}: ${c.command}`);
        assert.equal(c.shell, shell);
      }
      assert.ok(!cmds.some((c) => c.command.includes('ghp_')), 'no token reached the store');
      const status = weft(['observe', 'status'], env);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, new RegExp(`${shell}\\s+yes`));
      const un = weft(['observe', 'uninstall', '--shell', shell], env);
      assert.match(un.stdout, /removed the weft observe hook/);
    } finally {
      if (daemon && daemon.proc.exitCode === null) {
        daemon.proc.kill('SIGTERM');
        await daemon.exited;
      }
      t.cleanup();
    }
  });
}

test('a daemon reads only the spools set up for it: not the default one until `weft observe install` names it for this node', async () => {
  const { writeSpool } = await import('../helpers/privacy-mesh.js');
  const t = tempDir('weft-observe-only-');
  const runtime = join(t.dir, 'run');
  mkdirSync(runtime, { recursive: true, mode: 0o700 });
  const env = { HOME: t.dir, XDG_RUNTIME_DIR: runtime, WEFT_API_PORT: '0', WEFT_COMPUTER_NAME: 'only', WEFT_LOG_LEVEL: 'warn' };
  // Another node's hook (or the user's real shell) writes to the default spool.
  writeSpool(join(runtime, 'weft-spool'), 'bash-1-1.spool', [{ command: 'echo not for this node' }]);
  const daemon = await startDaemonProcess(env);
  try {
    const api = new WeftClient({ url: daemon.url, token: readToken(join(t.dir, '.weft', 'data')) as string });
    await api.request('POST', '/api/privacy/observe/scan');
    assert.equal((await allCommands(api)).length, 0, 'nothing is read from a spool no hook of this node writes to');
    const printed = weft(['observe', 'install', '--shell', 'bash'], env);
    assert.equal(printed.code, 0, printed.stderr);
    assert.match(printed.stdout, /# >>> weft observe >>>/);
    await api.request('POST', '/api/privacy/observe/scan');
    assert.deepEqual((await allCommands(api)).map((c) => c.command), ['echo not for this node'], 'once a hook for this node names it, it is read, without a restart');
  } finally {
    daemon.proc.kill('SIGTERM');
    await daemon.exited;
    t.cleanup();
  }
});
