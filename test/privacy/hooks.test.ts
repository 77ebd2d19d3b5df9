import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  hookScript,
  hookStatus,
  installHook,
  OBSERVED_SHELLS,
  type ObservedShell,
  rcFileFor,
  SPOOL_FORMAT_VERSION,
  uninstallHook,
} from '../../src/privacy/hooks.js';
import { weft } from '../helpers/cli.js';
import { runInPty } from '../helpers/pty-shell.js';
import { tempDir } from '../helpers/tmp.js';

type RealShell = Exclude<ObservedShell, 'sh'>;
const REAL_SHELLS: readonly RealShell[] = ['bash', 'zsh', 'fish'];

interface SpoolRecord {
  version: string;
  ts: number;
  shell: string;
  exit: number | null;
  durationMs: number | null;
  cwd: string;
  command: string;
}

/** The test's own reading of the spool contract (the daemon has its own parser). */
function parseSpool(text: string): SpoolRecord[] {
  const parts = text.split('\x1e\n');
  assert.equal(parts.pop(), '', 'the file ends with a whole record');
  return parts.map((raw) => {
    const fields = raw.split('\x1f');
    assert.ok(fields.length >= 7, `a record has 7 fields: ${JSON.stringify(raw)}`);
    const [version, ts, shell, exit, duration, cwd] = fields as [
      string,
      string,
      string,
      string,
      string,
      string,
    ];
    assert.match(ts, /^\d+(\.\d+)?$/, `ts is decimal seconds: ${JSON.stringify(raw)}`);
    assert.match(exit, /^\d*$/);
    assert.match(duration, /^\d*$/);
    return {
      version,
      ts: Number(ts),
      shell,
      exit: exit === '' ? null : Number(exit),
      durationMs: duration === '' ? null : Number(duration),
      cwd,
      command: fields.slice(6).join('\x1f'),
    };
  });
}

/** The spool files one shell wrote into `dir`, and their records in file order. */
function readSpool(dir: string, shell: string): { files: string[]; records: SpoolRecord[] } {
  const name = new RegExp(`^${shell}-\\d+-\\d+\\.spool$`);
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => name.test(f)) : [];
  return { files, records: files.flatMap((f) => parseSpool(readFileSync(join(dir, f), 'utf8'))) };
}

/** Every file in `dir` (scratch files included) that contains `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => readFileSync(join(dir, f), 'utf8').includes(needle));
}

function hasBinary(bin: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$1"', 'sh', bin], { stdio: 'ignore' }).status === 0;
}

/** A spool dir whose name needs quoting in every shell. */
function hostileSpoolDir(home: string): string {
  return join(home, `spool dir 'q' "d" $HOME \\b`);
}

/** What a fresh home needs before the hook goes in: rc content the user had, set before the block. */
function userRc(shell: RealShell, home: string, before: string): void {
  if (shell === 'fish') {
    mkdirSync(join(home, '.config', 'fish', 'conf.d'), { recursive: true });
    // conf.d files run in name order: 00-user.fish is sourced before weft-observe.fish.
    writeFileSync(join(home, '.config', 'fish', 'conf.d', '00-user.fish'), before);
  } else {
    writeFileSync(rcFileFor(shell, home), before);
  }
}

const NOISE =
  /command not found|unknown command|unbound variable|parameter not set|parse error|syntax error|no such file or directory|permission denied/i;

/** Fails with the text around the first error message a shell printed, not the whole session. */
function assertQuiet(output: string, what: string): void {
  const m = NOISE.exec(output);
  if (m)
    assert.fail(
      `${what}: the shell printed ${JSON.stringify(output.slice(Math.max(0, m.index - 300), m.index + 200))}`,
    );
}

interface Expected {
  command: string;
  exit: number;
  cwd: string;
}

/**
 * About 1,000 command lines for one shell, builtins only once PATH is gone, and the records they must
 * leave: failures with known statuses, a quoted and a compound multi-line command, a pasted line with a
 * tab, quotes and non-ASCII, the same command twice in a row, a leading-space canary, an empty line, cd
 * into a directory with spaces, and one command that sleeps 0.2 s (an absolute path, so no PATH needed).
 */
function session(shell: RealShell, home: string, canary: string): { lines: string[]; expected: Expected[] } {
  const lines: string[] = [];
  const expected: Expected[] = [];
  const spaced = join(home, 'dir with spaces é');
  mkdirSync(spaced);
  let cwd = home;
  const run = (typed: string | string[], exit = 0, recorded?: string): void => {
    const typedLines = Array.isArray(typed) ? typed : [typed];
    lines.push(...typedLines);
    expected.push({ command: recorded ?? typedLines.join('\n'), exit, cwd });
  };
  run(shell === 'fish' ? 'set -gx PATH /nonexistent' : 'PATH=/nonexistent');
  run(shell === 'fish' ? 'function weft_rc; return $argv[1]; end' : 'weft_rc() { return "$1"; }');
  for (let i = 0; i < 1000; i++) {
    if (i === 100) run(['echo "multi', `line ${i}" >/dev/null`]);
    else if (i === 150) {
      if (shell === 'fish') run(['if true', `true cmd-${i}`, 'end']);
      // bash keeps a compound command as cmdhist joins it (exact only with lithist, see hooks.ts).
      else if (shell === 'bash')
        run(['if true', `then true cmd-${i}`, 'fi'], 0, `if true; then true cmd-${i}; fi`);
      else run(['if true', `then true cmd-${i}`, 'fi']);
    } else if (i === 200) {
      // Typed as a bracketed paste, so the tab goes in literally instead of triggering completion.
      const text = `printf '%s\t%s\\n' "q'uo\\"te" 'ünï©ødé ✓ 日本' >/dev/null`;
      run(`\x1b[200~${text}\x1b[201~`, 0, text);
    } else if (i === 250) {
      run('true same-cmd');
      run('true same-cmd');
    } else if (i === 300) lines.push(` true ${canary}`);
    else if (i === 350) {
      run(`cd '${spaced}'`);
      cwd = spaced;
    } else if (i === 400) run('/bin/sleep 0.2');
    else if (i === 450) lines.push('');
    else if (i === 500) run('false', 1);
    else if (i === 650) {
      run(`cd '${home}'`);
      cwd = home;
    } else if (i % 97 === 0) run(`weft_rc ${(i % 250) + 1}`, (i % 250) + 1);
    else run(`true cmd-${i}`);
  }
  return { lines, expected };
}

const HISTORY_FILE: Record<RealShell, string> = {
  bash: '.bash_history',
  zsh: '.zsh_history',
  fish: join('.local', 'share', 'fish', 'fish_history'),
};

/**
 * rc settings that make the session harder for the hook (Debian's HISTCONTROL, nounset, ignore-space),
 * with history long enough to keep the whole session. fish's default prompt runs `uname` and `kill`
 * after a failed command, which PATH=/nonexistent would turn into errors that are not the hook's.
 */
const STRICT_RC: Record<RealShell, string> = {
  bash: 'HISTCONTROL=ignoreboth HISTSIZE=5000 HISTFILESIZE=5000\nset -u\n',
  zsh: 'setopt HIST_IGNORE_SPACE HIST_IGNORE_DUPS NO_UNSET\nHISTFILE=~/.zsh_history SAVEHIST=5000 HISTSIZE=5000\n',
  // fish 3.6's paste mode drops a tab, and the session wants one in a command line.
  fish:
    "function fish_prompt; echo -n '> '; end\n" +
    "function fish_user_key_bindings; bind -M paste \\t 'commandline -i \\t'; end\n",
};

for (const shell of OBSERVED_SHELLS) {
  test(`${shell}: install is idempotent, uninstall removes exactly the block, status sees both`, () => {
    const { dir: home, cleanup } = tempDir('weft-hooks-');
    try {
      const rc = rcFileFor(shell, home);
      const original = shell === 'fish' ? undefined : "# mine\nalias ll='ls -l'\nexport FOO=1";
      if (original !== undefined) writeFileSync(rc, original);
      const spoolDir = hostileSpoolDir(home);

      const first = installHook(shell, { spoolDir, home });
      assert.deepEqual(first, { shell, rcFile: rc, changed: true, action: 'installed' });
      const afterFirst = readFileSync(rc, 'utf8');
      const second = installHook(shell, { spoolDir, home });
      assert.equal(second.action, 'unchanged');
      assert.equal(second.changed, false);
      assert.equal(readFileSync(rc, 'utf8'), afterFirst, 'a second install writes nothing');
      assert.equal(afterFirst.split('# >>> weft observe >>>').length, 2, 'exactly one block');
      // A file with no final newline gets one before the block, and nothing else of it changes.
      if (original !== undefined) assert.ok(afterFirst.startsWith(`${original}\n# >>> weft observe >>>`));
      else assert.equal((statSync(rc).mode & 0o777).toString(8), '600', 'a new rc file is private');
      assert.equal(afterFirst.slice(afterFirst.indexOf('# >>>')), hookScript(shell, { spoolDir }));

      // The user adds lines after the block; a reinstall elsewhere replaces the block where it stands.
      writeFileSync(rc, `${afterFirst}# after\n`);
      const moved = installHook(shell, { spoolDir: '/elsewhere', home });
      assert.equal(moved.action, 'updated');
      const afterMove = readFileSync(rc, 'utf8');
      assert.ok(
        afterMove.startsWith(original === undefined ? '# >>> weft observe >>>' : `${original}\n# >>>`),
      );
      assert.ok(afterMove.endsWith('# <<< weft observe <<<\n# after\n'));
      assert.equal(afterMove.split('# >>> weft observe >>>').length, 2);
      installHook(shell, { spoolDir, home });

      const on = hookStatus({ home }).find((s) => s.shell === shell)!;
      assert.equal(on.installed, true);
      assert.equal(on.rcFile, rc);
      assert.equal(on.spoolDir, spoolDir, 'the spool dir survives quoting');
      assert.equal(on.formatVersion, SPOOL_FORMAT_VERSION);
      assert.ok(on.limits && on.limits.length > 0);
      for (const other of hookStatus({ home }).filter((s) => s.shell !== shell))
        assert.equal(other.installed, false);

      const removed = uninstallHook(shell, { home });
      assert.deepEqual(removed, { shell, rcFile: rc, changed: true, action: 'removed' });
      assert.equal(readFileSync(rc, 'utf8'), `${original === undefined ? '' : `${original}\n`}# after\n`);
      assert.equal(uninstallHook(shell, { home }).action, 'absent');
      const off = hookStatus({ home }).find((s) => s.shell === shell)!;
      assert.equal(off.installed, false);
      assert.equal(off.spoolDir, undefined);
    } finally {
      cleanup();
    }
  });
}

test('install then uninstall leaves an rc file byte-for-byte, and fish loses its empty conf.d file', () => {
  const { dir: home, cleanup } = tempDir('weft-hooks-');
  try {
    const original = '# a\r\nexport X="y z"\n\n\tindented\n';
    writeFileSync(join(home, '.bashrc'), original);
    installHook('bash', { spoolDir: '/s', home });
    uninstallHook('bash', { home });
    assert.equal(readFileSync(join(home, '.bashrc'), 'utf8'), original);

    installHook('fish', { spoolDir: '/s', home });
    assert.ok(existsSync(rcFileFor('fish', home)));
    assert.equal(uninstallHook('fish', { home }).action, 'removed');
    assert.equal(existsSync(rcFileFor('fish', home)), false);
  } finally {
    cleanup();
  }
});

test('the hooks run no command substitution, pipe or subshell per command (and fish only builtins in ( ))', () => {
  // Start-up may fork (mkdir, fish's one `date`); the per-command part may not. `$((` is arithmetic,
  // `+=(`/`=(` are array assignments, and fish runs a builtin inside ( ) in-process: none of them forks.
  for (const shell of REAL_SHELLS) {
    const text = hookScript(shell, { spoolDir: '/s' });
    const start = text.indexOf('# -- per-command');
    const end = text.indexOf('# -- end per-command --');
    assert.ok(start > 0 && end > start, `${shell}: the per-command part is marked`);
    const code = text
      .slice(start, end)
      .split('\n')
      .filter((l) => !l.trimStart().startsWith('#'))
      .join('\n')
      .replace(/\$?\(\((?:[^()]|\([^()]*\))*\)\)/g, '0');
    assert.doesNotMatch(code, /\$\((?!\()/, `${shell}: no $( )`);
    assert.doesNotMatch(code, /`/, `${shell}: no backticks`);
    assert.doesNotMatch(code, /[<>]\(/, `${shell}: no process substitution`);
    assert.doesNotMatch(code, /(^|[^|>])\|(?!\|)/m, `${shell}: no pipes`);
    assert.doesNotMatch(code, /\b(command|date|mkdir|rm|sed|cat)\s/, `${shell}: no external tools`);
    if (shell === 'fish')
      assert.doesNotMatch(code, /(?<![\w$])\((?!builtin )/, 'fish: ( ) only around builtins');
    else assert.doesNotMatch(code, /(^|[\s;&])\((?!\()/m, `${shell}: no ( ) subshells`);
  }
});

for (const shell of REAL_SHELLS) {
  test(`${shell}: 1,000 commands in a pty, builtins only, are all recorded once, in order, with status, cwd and time`, async (t) => {
    if (!hasBinary(shell)) {
      t.skip(`${shell} is not installed on this machine`);
      return;
    }
    const { dir: home, cleanup } = tempDir(`weft-${shell}-`);
    try {
      const spoolDir = hostileSpoolDir(home);
      userRc(shell, home, STRICT_RC[shell]);
      installHook(shell, { spoolDir, home });
      const canary = `weft-canary-${process.pid}-${Date.now()}`;
      const { lines, expected } = session(shell, home, canary);
      const before = Date.now() / 1000;
      const run = await runInPty(shell, { home, lines, timeoutMs: 150_000 });
      const after = Date.now() / 1000;

      assertQuiet(run.output, 'no external command was looked up, and no hook error');
      assert.ok(
        (statSync(spoolDir).mode & 0o777) === 0o700,
        `the hook made the spool dir 0700 (${statSync(spoolDir).mode.toString(8)})`,
      );
      const { files, records } = readSpool(spoolDir, shell);
      assert.equal(files.length, 1, `one spool file per shell process: ${files.join(', ')}`);
      assert.match(files[0]!, new RegExp(`^${shell}-\\d+-(\\d+)\\.spool$`));
      const start = Number(/-(\d+)\.spool$/.exec(files[0]!)![1]);
      assert.ok(
        start >= Math.floor(before) - 1 && start <= after + 1,
        'the file name carries the start time',
      );

      const want = [...expected, { command: run.markerLine, exit: 0, cwd: home }];
      assert.deepEqual(
        records.map((r) => r.command),
        want.map((w) => w.command),
        'every command exactly once, in order',
      );
      let lastTs = 0;
      records.forEach((r, i) => {
        const w = want[i]!;
        const where = `record ${i} (${JSON.stringify(r.command)})`;
        assert.equal(r.version, String(SPOOL_FORMAT_VERSION), where);
        assert.equal(r.shell, shell, where);
        assert.equal(r.exit, w.exit, `${where}: exit status`);
        assert.equal(r.cwd, w.cwd, `${where}: cwd at start`);
        // fish's clock is uptime plus an offset measured at start-up: allow it its ~10 ms steps.
        assert.ok(
          r.ts >= before - 0.05 && r.ts <= after + 0.05,
          `${where}: ts ${r.ts} in [${before}, ${after}]`,
        );
        assert.ok(r.ts >= lastTs - 0.02, `${where}: ts does not go back`);
        lastTs = Math.max(lastTs, r.ts);
        assert.ok(
          r.durationMs !== null && Number.isInteger(r.durationMs) && r.durationMs >= 0,
          `${where}: duration`,
        );
      });
      const slept = records.find((r) => r.command === '/bin/sleep 0.2')!;
      assert.ok(
        slept.durationMs! >= 150 && slept.durationMs! < 5000,
        `sleep 0.2 took ${slept.durationMs} ms`,
      );
      const quick = records.filter((r) => r.command.startsWith('true cmd-')).map((r) => r.durationMs!);
      assert.ok(Math.max(...quick) < 1000, 'a builtin is not charged a long duration');

      assert.deepEqual(
        filesContaining(spoolDir, canary),
        [],
        'the leading-space command is in no spool file',
      );
      const history = join(home, HISTORY_FILE[shell]);
      assert.ok(existsSync(history), `${shell} saved its history`);
      const saved = readFileSync(history, 'utf8');
      assert.ok(!saved.includes(canary), 'the leading-space command is not in history either');
      if (shell === 'bash') {
        const same = saved.split('\n').filter((l) => l === 'true same-cmd');
        assert.equal(same.length, 1, 'ignoredups still holds for history although both runs were recorded');
      }
    } finally {
      cleanup();
    }
  });

  test(`${shell}: a prompt hook the user set before the weft hook still sees each command's status`, async (t) => {
    if (!hasBinary(shell)) {
      t.skip(`${shell} is not installed on this machine`);
      return;
    }
    const { dir: home, cleanup } = tempDir(`weft-${shell}-`);
    try {
      const seen = join(home, 'seen');
      const before: Record<RealShell, string> = {
        bash: `PROMPT_COMMAND='echo "u:$?" >> ${seen}'\nPS1='st=$? \\$ '\n`,
        zsh: `weft_user_precmd() { echo "u:$?" >> ${seen} }\nprecmd_functions+=(weft_user_precmd)\nPS1='st=%? %# '\n`,
        fish:
          `function weft_user_post --on-event fish_postexec; echo "u:$status" >> ${seen}; end\n` +
          'function fish_prompt; echo "st=$status> "; end\n',
      };
      userRc(shell, home, before[shell]);
      const spoolDir = join(home, 'spool');
      installHook(shell, { spoolDir, home });
      const define =
        shell === 'fish' ? 'function weft_rc; return $argv[1]; end' : 'weft_rc() { return "$1"; }';
      await runInPty(shell, { home, lines: [define, 'false', 'weft_rc 3', 'true', 'weft_rc 42'] });

      const statuses = readFileSync(seen, 'utf8').trim().split('\n');
      const at = statuses.indexOf('u:1');
      assert.deepEqual(statuses.slice(at, at + 4), ['u:1', 'u:3', 'u:0', 'u:42'], statuses.join(' '));
      const { records } = readSpool(spoolDir, shell);
      assert.deepEqual(
        records.map((r) => r.exit),
        [0, 1, 3, 0, 42, 0],
      );
    } finally {
      cleanup();
    }
  });
}

/**
 * The process-creating calls (fork, vfork, clone without CLONE_THREAD) in an `strace -ttt` log of the
 * shell's own process between two instants. Threads (fish has a pool) are not processes.
 */
function forksIn(trace: string, from: number, to: number): string[] {
  return trace.split('\n').filter((line) => {
    const m = /^(\d+\.\d+)\s+(clone3?|v?fork)\(/.exec(line);
    if (!m || line.includes('CLONE_THREAD')) return false;
    const at = Number(m[1]);
    return at >= from && at <= to;
  });
}

for (const shell of REAL_SHELLS) {
  test(`${shell}: under strace, the shell forks nothing while 300 commands are recorded`, async (t) => {
    if (!hasBinary(shell) || !hasBinary('strace')) {
      t.skip(`${hasBinary(shell) ? 'strace' : shell} is not installed on this machine`);
      return;
    }
    const { dir: home, cleanup } = tempDir(`weft-${shell}-`);
    try {
      const spoolDir = join(home, 'spool');
      userRc(shell, home, STRICT_RC[shell]);
      installHook(shell, { spoolDir, home });
      const trace = join(home, 'trace');
      const lines = [
        'true first',
        ...Array.from({ length: 300 }, (_, i) => (i % 50 ? `true n-${i}` : 'false')),
        'true last',
      ];
      // No -f: a fork is a call of the shell's own process, and following fish's start-up helpers is slow.
      const wrapper = ['strace', '-qq', '-ttt', '-e', 'trace=clone,clone3,fork,vfork', '-o', trace];
      try {
        await runInPty(shell, { home, lines, wrapper });
      } catch (e) {
        if (!existsSync(trace)) {
          t.skip(`strace cannot trace here: ${(e as Error).message.slice(0, 200)}`);
          return;
        }
        throw e;
      }
      const { files, records } = readSpool(spoolDir, shell);
      assert.equal(files.length, 1, 'the session wrote one spool file');
      const first = records.find((r) => r.command === 'true first')!;
      const last = records.find((r) => r.command === 'true last')!;
      assert.equal(records.filter((r) => /^(true n-|false)/.test(r.command)).length, 300);
      // From the start of the first command to the start of the last: 301 commands and their prompts.
      const all = readFileSync(trace, 'utf8');
      assert.ok(forksIn(all, 0, first.ts).length > 0, 'the trace does see the start-up forks (mkdir)');
      assert.deepEqual(forksIn(all, first.ts, last.ts), []);
    } finally {
      cleanup();
    }
  });
}

test('bash: with erasedups and HISTIGNORE, repeats are recorded, ignored and leading-space lines are not, history keeps its rules', async (t) => {
  if (!hasBinary('bash')) {
    t.skip('bash is not installed on this machine');
    return;
  }
  const { dir: home, cleanup } = tempDir('weft-bash-');
  try {
    // erasedups is the case where the hook must emulate ignorespace and HISTIGNORE itself (see hooks.ts).
    writeFileSync(join(home, '.bashrc'), "HISTCONTROL=ignoreboth:erasedups HISTIGNORE='true ign*:&'\n");
    const spoolDir = join(home, 'spool');
    installHook('bash', { spoolDir, home });
    const canary = `weft-canary-${process.pid}`;
    const lines = [
      'true a',
      'true a',
      ` true ${canary}`,
      'true b',
      'true ign-1',
      'true a',
      ` true ${canary}`,
      'true a',
    ];
    const run = await runInPty('bash', { home, lines });
    assertQuiet(run.output, 'bash');
    const { records } = readSpool(spoolDir, 'bash');
    assert.deepEqual(
      records.map((r) => r.command),
      ['true a', 'true a', 'true b', 'true a', 'true a', run.markerLine],
    );
    assert.deepEqual(filesContaining(spoolDir, canary), []);
    const saved = readFileSync(join(home, '.bash_history'), 'utf8').trim().split('\n');
    assert.deepEqual(
      saved,
      ['true b', 'true a', run.markerLine],
      'erasedups, ignorespace and HISTIGNORE as the user set them',
    );
  } finally {
    cleanup();
  }
});

test('fish: nothing is recorded in private mode', async (t) => {
  if (!hasBinary('fish')) {
    t.skip('fish is not installed on this machine');
    return;
  }
  const { dir: home, cleanup } = tempDir('weft-fish-');
  try {
    const spoolDir = join(home, 'spool');
    installHook('fish', { spoolDir, home });
    await runInPty('fish', {
      home,
      args: ['--private', '-i'],
      lines: ['true private-one', 'echo private-two'],
    });
    assert.deepEqual(readSpool(spoolDir, 'fish').records, []);
    assert.deepEqual(filesContaining(spoolDir, 'private-'), []);
  } finally {
    cleanup();
  }
});

test('sh: a shell with history (bash --posix) records through PS1; dash records nothing and shows no error', async (t) => {
  if (!hasBinary('bash') || !hasBinary('dash')) {
    t.skip('bash or dash is not installed on this machine');
    return;
  }
  const { dir: home, cleanup } = tempDir('weft-sh-');
  try {
    const spoolDir = join(home, 'spool');
    installHook('sh', { spoolDir, home });
    const env = { ENV: rcFileFor('sh', home), PS1: '$ ' };
    const lines = ['true one', 'false', ' true hidden', 'cd /'];
    const posix = await runInPty('bash', { home, env, args: ['--posix', '-i'], lines });
    assertQuiet(posix.output, 'bash --posix');
    const { records } = readSpool(spoolDir, 'sh');
    assert.deepEqual(
      records.map((r) => [r.command, r.exit, r.cwd]),
      [
        ['true one', 0, home],
        ['false', 1, home],
        ['cd /', 0, home],
        [posix.markerLine, 0, '/'],
      ],
    );
    assert.ok(records.every((r) => r.durationMs === null && r.shell === 'sh'));

    const dash = await runInPty('dash', { home, env, lines });
    assertQuiet(dash.output, 'dash');
    assert.equal(readSpool(spoolDir, 'sh').files.length, 1, 'dash added no spool file');
  } finally {
    cleanup();
  }
});

test('weft observe status names a hook an older Weft wrote (the sh hook of before 2026-12-07), and an install replaces it', () => {
  const { dir: home, cleanup } = tempDir('weft-hooks-older-');
  try {
    const spoolDir = join(home, 'spool');
    const current = hookScript('sh', { spoolDir });
    // The sh hook as Weft wrote it before 34fe5f0: it opened its state file before sending stderr
    // away, so every new shell printed "…/.sh-<pid>.state: No such file or directory".
    const edits: Array<[string, string]> = [
      ["      # 2>/dev/null first: redirections apply left to right, and the state file is missing at a new shell's first prompt.\n", ''],
      ['} 2>/dev/null <"$_weft_state"', '} <"$_weft_state" 2>/dev/null'],
      ['history 1 2>/dev/null >|"$_weft_state.h"', 'history 1 >|"$_weft_state.h" 2>/dev/null'],
      ['fc -l -1 2>/dev/null >|"$_weft_state.h"', 'fc -l -1 >|"$_weft_state.h" 2>/dev/null'],
    ];
    let older = current;
    for (const [now, then] of edits) {
      assert.ok(older.includes(now), `the current sh hook has ${JSON.stringify(now)}`);
      older = older.replace(now, then);
    }
    writeFileSync(join(home, '.shrc'), `export A=1\n${older}`);
    installHook('bash', { spoolDir, home });
    const env = { HOME: home, WEFT_DATA_DIR: join(home, 'data'), WEFT_OBSERVE_SPOOL_DIR: spoolDir };
    const status = () => weft(['observe', 'status', '--json'], env);
    const hooks = () => (JSON.parse(status().stdout) as { hooks: Array<{ shell: string; installed: boolean; differs?: boolean }> }).hooks;

    // Before: both were "yes", and nothing said the sh hook kept the bug its upgrade had fixed.
    const text = weft(['observe', 'status'], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^sh +yes, not this version's /m);
    assert.match(text.stdout, /^bash +yes +\//m);
    assert.match(text.stdout, /the sh hook in \S+\.shrc is not the one this Weft installs .*: run 'weft observe install --shell sh --write'/);
    assert.deepEqual(
      hooks().filter((h) => h.installed).map((h) => [h.shell, h.differs]),
      [
        ['bash', false],
        ['sh', true],
      ],
    );

    const install = weft(['observe', 'install', '--shell', 'sh', '--write'], env);
    assert.equal(install.code, 0, install.stderr);
    assert.equal(readFileSync(join(home, '.shrc'), 'utf8'), `export A=1\n${current}`);
    assert.equal(hooks().find((h) => h.shell === 'sh')?.differs, false);
    assert.doesNotMatch(weft(['observe', 'status'], env).stdout, /not this version/);
  } finally {
    cleanup();
  }
});
