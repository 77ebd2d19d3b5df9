import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { test } from 'node:test';
import { startDaemonProcess, weft } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { NO_BUS, parsePlist } from './fakes.js';

/**
 * A child `weft` in a temp HOME whose `systemctl` and `launchctl` are stand-ins that answer as they do
 * without a user session (a container, CI, ssh) and log their arguments: the real session is never touched.
 */
function sandbox(dir: string): { env: NodeJS.ProcessEnv; calls: () => string[] } {
  const bin = join(dir, 'bin');
  const log = join(dir, 'calls.log');
  mkdirSync(bin);
  writeFileSync(
    join(bin, 'systemctl'),
    `#!/bin/sh\necho "systemctl $*" >> '${log}'\necho '${NO_BUS}' >&2\nexit 1\n`,
  );
  writeFileSync(
    join(bin, 'launchctl'),
    `#!/bin/sh\necho "launchctl $*" >> '${log}'\necho 'Bad request.' >&2\necho 'Could not find domain for port identifier: 501' >&2\nexit 113\n`,
  );
  chmodSync(join(bin, 'systemctl'), 0o755);
  chmodSync(join(bin, 'launchctl'), 0o755);
  const env: NodeJS.ProcessEnv = {
    HOME: dir,
    PATH: `${bin}${delimiter}${process.env.PATH ?? ''}`,
    XDG_CONFIG_HOME: undefined,
  };
  // Nothing of the test runner's own WEFT_* settings may reach the service files.
  for (const k of Object.keys(process.env)) if (k.startsWith('WEFT_')) env[k] = undefined;
  return { env, calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []) };
}

test('weft service install, again, status, uninstall and status, as a child process without a user bus', () => {
  const t = tempDir('weft-service-cli-');
  try {
    const sb = sandbox(t.dir);
    const cfgFile = join(t.dir, 'config.toml');
    writeFileSync(cfgFile, 'computer.name = "svc-test"\n');
    const env = {
      ...sb.env,
      WEFT_API_PORT: '9411',
      WEFT_TELEGRAM_BOT_TOKEN: '123:secret',
      WEFT_TOKEN: 'client',
    };
    const unit = join(t.dir, '.config', 'systemd', 'user', 'weft.service');
    const envFile = join(t.dir, '.weft', 'data', 'service.env');

    const dry = weft(['--config', cfgFile, 'service', 'install', '--dry-run', '--platform', 'linux'], env);
    assert.equal(dry.code, 0, dry.stderr);
    assert.match(dry.stdout, /^dry run: nothing is written or run$/m);
    assert.match(
      dry.stdout,
      new RegExp(
        `^ {4}ExecStart=${process.execPath} \\S+/dist/src/cli/main\\.js daemon --config ${cfgFile}$`,
        'm',
      ),
    );
    assert.match(dry.stdout, /^ {4}WEFT_TELEGRAM_BOT_TOKEN="\*{8}"$/m);
    assert.doesNotMatch(dry.stdout, /123:secret/);
    assert.equal(existsSync(join(t.dir, '.config')), false, 'a dry run writes nothing');
    assert.deepEqual(sb.calls(), [], 'and runs nothing');

    const first = weft(['--config', cfgFile, 'service', 'install', '--platform', 'linux'], env);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(statSync(unit).mode & 0o777, 0o600);
    assert.equal(statSync(envFile).mode & 0o777, 0o600);
    assert.match(first.stdout, new RegExp(`^wrote ${unit} \\(mode 0600\\)$`, 'm'));
    assert.match(
      first.stdout,
      new RegExp(`^wrote ${envFile} \\(mode 0600\\): WEFT_API_PORT, WEFT_TELEGRAM_BOT_TOKEN$`, 'm'),
    );
    assert.match(
      first.stdout,
      /^not copied from this shell: WEFT_TOKEN \(read by clients, not the daemon\)$/m,
    );
    assert.match(
      first.stdout,
      new RegExp(
        `^systemctl --user is not reachable \\(${NO_BUS}\\), so nothing was loaded\\. To load it, run:\\n {4}systemctl --user daemon-reload\\n {4}systemctl --user enable --now weft\\.service$`,
        'm',
      ),
    );
    assert.match(readFileSync(envFile, 'utf8'), /^WEFT_TELEGRAM_BOT_TOKEN="123:secret"$/m);
    assert.deepEqual(sb.calls(), ['systemctl --user show --property=Version']);

    const again = weft(['--config', cfgFile, 'service', 'install', '--platform', 'linux', '--json'], env);
    assert.equal(again.code, 0, again.stderr);
    const r = JSON.parse(again.stdout) as {
      kind: string;
      files: Array<{ action: string }>;
      manager: { reachable: boolean; reason: string };
      toRun: string[];
    };
    assert.equal(r.kind, 'unchanged');
    assert.deepEqual(
      r.files.map((f) => f.action),
      ['unchanged', 'unchanged'],
    );
    assert.deepEqual(r.manager, {
      name: 'systemctl --user',
      loaded: false,
      reachable: false,
      reason: NO_BUS,
    });
    assert.doesNotMatch(again.stdout, /123:secret/, 'the JSON report names variables, never their values');
    const human = weft(['--config', cfgFile, 'service', 'install', '--platform', 'linux'], env);
    assert.match(human.stdout, new RegExp(`^unchanged: ${unit}, ${envFile}$`, 'm'));

    const status = weft(['--config', cfgFile, 'service', 'status', '--platform', 'linux'], env);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(
      status.stdout.trim(),
      [
        `installed: ${unit}`,
        `installed: ${envFile}`,
        `service: unknown: no user service manager reachable (systemctl --user: ${NO_BUS})`,
        `daemon: not running (no daemon.json in ${join(t.dir, '.weft', 'data')})`,
      ].join('\n'),
    );
    const sj = JSON.parse(
      weft(['--config', cfgFile, 'service', 'status', '--platform', 'linux', '--json'], env).stdout,
    ) as {
      installed: boolean;
      manager: { reachable: boolean };
      daemon: { answers: boolean };
    };
    assert.equal(sj.installed, true);
    assert.equal(sj.manager.reachable, false);
    assert.equal(sj.daemon.answers, false);

    const un = weft(['--config', cfgFile, 'service', 'uninstall', '--platform', 'linux'], env);
    assert.equal(un.code, 0, un.stderr);
    assert.match(un.stdout, new RegExp(`^removed ${unit}\\nremoved ${envFile}$`, 'm'));
    assert.match(
      un.stdout,
      /If it runs, run:\n {4}systemctl --user stop weft\.service\n {4}systemctl --user daemon-reload$/m,
    );
    assert.equal(existsSync(unit), false);
    assert.equal(existsSync(envFile), false);

    const none = weft(['--config', cfgFile, 'service', 'uninstall', '--platform', 'linux', '--json'], env);
    assert.equal(none.code, 0, none.stderr);
    assert.deepEqual((JSON.parse(none.stdout) as { removed: string[] }).removed, []);
    assert.equal(
      weft(['--config', cfgFile, 'service', 'uninstall', '--platform', 'linux'], env).stdout.trim(),
      'nothing to remove: the weft service is not installed',
    );

    const after = weft(['--config', cfgFile, 'service', 'status', '--platform', 'linux', '--json'], env);
    assert.equal((JSON.parse(after.stdout) as { installed: boolean }).installed, false);
    assert.match(
      weft(['--config', cfgFile, 'service', 'status', '--platform', 'linux'], env).stdout,
      /^installed: no \(no .*weft\.service\)$/m,
    );
  } finally {
    t.cleanup();
  }
});

test('weft service install --platform darwin writes the launchd agent 0600 and prints the launchctl commands when there is no GUI session', () => {
  const t = tempDir('weft-service-cli-');
  try {
    const sb = sandbox(t.dir);
    const plist = join(t.dir, 'Library', 'LaunchAgents', 'dev.weft.daemon.plist');
    const r = weft(['service', 'install', '--platform', 'darwin'], { ...sb.env, WEFT_API_PORT: '9412' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(statSync(plist).mode & 0o777, 0o600);
    const p = parsePlist(readFileSync(plist, 'utf8'));
    assert.deepEqual(p.EnvironmentVariables, { WEFT_API_PORT: '9412' });
    assert.deepEqual(p.KeepAlive, { SuccessfulExit: false });
    assert.match(
      r.stdout,
      /^launchctl is not reachable \(Bad request\.; Could not find domain for port identifier: 501\), so nothing was loaded\. To load it, run:\n {4}launchctl enable gui\/\d+\/dev\.weft\.daemon\n {4}launchctl bootstrap gui\/\d+ \S+dev\.weft\.daemon\.plist$/m,
    );
    const u = weft(['service', 'uninstall', '--platform', 'darwin'], sb.env);
    assert.equal(u.code, 0, u.stderr);
    assert.match(u.stdout, new RegExp(`^removed ${plist}$`, 'm'));
    assert.equal(existsSync(plist), false);
    assert.ok(
      sb.calls().every((c) => c.startsWith('launchctl print gui/')),
      `only probes ran: ${sb.calls().join('; ')}`,
    );
  } finally {
    t.cleanup();
  }
});

test('weft service status says the daemon answers when one runs on the data dir (read from its daemon.json)', async () => {
  const t = tempDir('weft-service-cli-');
  const sb = sandbox(t.dir);
  const env = { ...sb.env, WEFT_API_PORT: '0', WEFT_LOG_LEVEL: 'warn' };
  const d = await startDaemonProcess(env);
  try {
    const r = weft(['service', 'status', '--platform', 'linux', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as {
      installed: boolean;
      daemon: { answers: boolean; url: string; pid: number };
    };
    assert.equal(s.installed, false);
    assert.deepEqual(s.daemon.answers, true);
    assert.equal(s.daemon.url, d.url);
    assert.equal(s.daemon.pid, d.proc.pid);
    assert.match(
      weft(['service', 'status', '--platform', 'linux'], env).stdout,
      new RegExp(`^daemon: answers at ${d.url} \\(pid ${d.proc.pid}, node '[^']+', up \\d+s\\)$`, 'm'),
    );
  } finally {
    d.proc.kill('SIGTERM');
    await d.exited;
    t.cleanup();
  }
});
