import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  formatInstall,
  formatStatus,
  formatUninstall,
  installService,
  serviceStatus,
  systemRunner,
  uninstallService,
} from '../../src/service/index.js';
import { tempDir } from '../helpers/tmp.js';
import { fakeLaunchd, fakeSystemd, NO_BUS, noBus, specFor } from './fakes.js';

const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
const noDaemon = async (dataDir: string) => ({
  answers: false,
  detail: `not running (no daemon.json in ${dataDir})`,
});

test('with no user bus, install writes the unit and environment file 0600, makes the log directory, loads nothing and says what to run', async () => {
  const t = tempDir('weft-service-');
  try {
    const spec = specFor(t.dir, 'linux', { WEFT_API_PORT: '9300', WEFT_TOKEN: 'x' });
    const bus = noBus();
    const r = await installService(spec, { runner: systemRunner({ exec: bus.exec }) });
    const unit = join(t.dir, '.config', 'systemd', 'user', 'weft.service');
    const env = join(t.dir, '.weft', 'data', 'service.env');
    assert.equal(r.ok, true);
    assert.equal(r.kind, 'new');
    assert.equal(mode(unit), '600');
    assert.equal(mode(env), '600');
    assert.equal(mode(join(t.dir, '.weft', 'data', 'logs')), '700');
    assert.equal(readFileSync(unit, 'utf8'), spec.files[0]?.text);
    assert.deepEqual(bus.calls, ['systemctl --user show --property=Version'], 'only the probe ran');
    assert.deepEqual(r.toRun, [
      'systemctl --user daemon-reload',
      'systemctl --user enable --now weft.service',
    ]);
    const out = formatInstall(r);
    assert.match(out, new RegExp(`^wrote ${unit} \\(mode 0600\\)$`, 'm'));
    assert.match(out, new RegExp(`^wrote ${env} \\(mode 0600\\): WEFT_API_PORT$`, 'm'));
    assert.match(out, /^made directories \(mode 0700\): .*\.weft\/data\/logs/m);
    assert.match(out, /^not copied from this shell: WEFT_TOKEN \(read by clients, not the daemon\)$/m);
    assert.match(
      out,
      new RegExp(
        `^systemctl --user is not reachable \\(${NO_BUS}\\), so nothing was loaded\\. To load it, run:\\n    systemctl --user daemon-reload\\n    systemctl --user enable --now weft.service$`,
        'm',
      ),
    );

    const again = await installService(spec, { runner: systemRunner({ exec: noBus().exec }) });
    assert.equal(again.kind, 'unchanged');
    assert.deepEqual(again.directories, []);
    assert.match(formatInstall(again), new RegExp(`^unchanged: ${unit}, ${env}$`, 'm'));
    assert.doesNotMatch(formatInstall(again), /^wrote /m);
  } finally {
    t.cleanup();
  }
});

test('--dry-run shows the files (secrets masked) and the commands, and writes and runs nothing', async () => {
  const t = tempDir('weft-service-');
  try {
    const spec = specFor(t.dir, 'linux', { WEFT_REDIS_URL: 'redis://:pw@h:6379' });
    const bus = noBus();
    const r = await installService(spec, { runner: systemRunner({ exec: bus.exec }), dryRun: true });
    assert.deepEqual(bus.calls, []);
    assert.equal(existsSync(join(t.dir, '.config')), false);
    assert.equal(existsSync(join(t.dir, '.weft')), false);
    const out = formatInstall(r);
    assert.match(out, /^dry run: nothing is written or run$/m);
    assert.match(out, /^would write .*weft\.service \(mode 0600, new\):\n {4}# Written by/m);
    assert.match(out, /^ {4}Restart=on-failure$/m);
    assert.match(out, /^ {4}WEFT_REDIS_URL="\*{8}"$/m);
    assert.doesNotMatch(out + JSON.stringify(r), /:pw@/, 'the secret is not printed');
    assert.match(
      out,
      /^then run \(when systemctl --user is reachable\):\n {4}systemctl --user daemon-reload\n {4}systemctl --user enable --now weft\.service$/m,
    );
  } finally {
    t.cleanup();
  }
});

test('a reachable systemd: install reloads and enables --now; again it does nothing; a changed unit is replaced, reloaded and restarted', async () => {
  const t = tempDir('weft-service-');
  try {
    const sd = fakeSystemd();
    const runner = systemRunner({ exec: sd.exec });
    const first = await installService(specFor(t.dir, 'linux'), { runner });
    assert.equal(first.ok, true);
    assert.equal(first.manager.loaded, true);
    assert.deepEqual(
      first.ran.map((c) => c.command),
      ['systemctl --user daemon-reload', 'systemctl --user enable --now weft.service'],
    );
    assert.match(
      formatInstall(first),
      /^ran: systemctl --user enable --now weft\.service\nthe service is loaded: it starts at login and restarts on failure$/m,
    );
    assert.deepEqual(sd.state, { active: true, enabled: true });

    const same = await installService(specFor(t.dir, 'linux'), { runner });
    assert.equal(same.kind, 'unchanged');
    assert.deepEqual(same.ran, []);
    assert.match(formatInstall(same), /already loaded and running; nothing to do/);

    sd.state.active = false;
    const restart = await installService(specFor(t.dir, 'linux'), { runner });
    assert.deepEqual(
      restart.ran.map((c) => c.command),
      ['systemctl --user enable --now weft.service'],
      'an unchanged but stopped service is started',
    );

    const changed = await installService(specFor(t.dir, 'linux', { WEFT_API_PORT: '9400' }), { runner });
    assert.equal(changed.kind, 'changed');
    assert.deepEqual(
      changed.files.map((f) => f.action),
      ['unchanged', 'changed'],
    );
    assert.deepEqual(
      changed.ran.map((c) => c.command),
      [
        'systemctl --user daemon-reload',
        'systemctl --user enable weft.service',
        'systemctl --user restart weft.service',
      ],
    );
    assert.match(formatInstall(changed), /^replaced .*service\.env \(mode 0600\): WEFT_API_PORT$/m);
    assert.match(
      readFileSync(join(t.dir, '.weft', 'data', 'service.env'), 'utf8'),
      /^WEFT_API_PORT="9400"$/m,
    );
  } finally {
    t.cleanup();
  }
});

test('a loosened file mode counts as a change and is put back to 0600', async () => {
  const t = tempDir('weft-service-');
  try {
    const runner = systemRunner({ exec: noBus().exec });
    await installService(specFor(t.dir, 'linux'), { runner });
    const { chmodSync } = await import('node:fs');
    const unit = join(t.dir, '.config', 'systemd', 'user', 'weft.service');
    chmodSync(unit, 0o644);
    const r = await installService(specFor(t.dir, 'linux'), { runner });
    assert.equal(r.kind, 'changed');
    assert.equal(mode(unit), '600');
  } finally {
    t.cleanup();
  }
});

test('when systemd refuses to enable, install says so and fails (exit 1), and the files stay written', async () => {
  const t = tempDir('weft-service-');
  try {
    const r = await installService(specFor(t.dir, 'linux'), {
      runner: systemRunner({ exec: fakeSystemd({ fail: 'enable' }).exec }),
    });
    assert.equal(r.ok, false);
    assert.match(
      r.error ?? '',
      /^systemctl --user enable --now weft\.service failed \(exit 1\): Failed to enable unit/,
    );
    assert.match(
      formatInstall(r),
      /^weft: the service was written but not loaded: systemctl --user enable --now/m,
    );
    assert.ok(existsSync(join(t.dir, '.config', 'systemd', 'user', 'weft.service')));
  } finally {
    t.cleanup();
  }
});

test('uninstall disables --now, removes the unit and environment file, reloads, keeps the logs; a second uninstall has nothing to remove', async () => {
  const t = tempDir('weft-service-');
  try {
    const sd = fakeSystemd();
    const runner = systemRunner({ exec: sd.exec });
    await installService(specFor(t.dir, 'linux', { WEFT_API_PORT: '1' }), { runner });
    const r = await uninstallService(specFor(t.dir, 'linux'), { runner });
    const unit = join(t.dir, '.config', 'systemd', 'user', 'weft.service');
    const env = join(t.dir, '.weft', 'data', 'service.env');
    assert.equal(r.ok, true);
    assert.deepEqual(r.removed, [unit, env]);
    assert.deepEqual(
      r.ran.map((c) => c.command),
      ['systemctl --user disable --now weft.service'],
    );
    assert.deepEqual(
      r.ranAfterRemoval.map((c) => c.command),
      ['systemctl --user daemon-reload'],
    );
    assert.deepEqual(sd.state, { active: false, enabled: false });
    assert.equal(existsSync(unit), false);
    assert.equal(existsSync(env), false);
    assert.ok(existsSync(join(t.dir, '.weft', 'data', 'logs')));
    assert.match(
      formatUninstall(r),
      new RegExp(
        `^ran: systemctl --user disable --now weft.service\\nremoved ${unit}\\nremoved ${env}\\nran: systemctl --user daemon-reload`,
      ),
    );
    assert.match(formatUninstall(r), /^kept .*\/logs \(the logs; remove it yourself if you want\)$/m);

    const none = await uninstallService(specFor(t.dir, 'linux'), { runner });
    assert.equal(none.ok, true);
    assert.deepEqual(none.removed, []);
    assert.equal(formatUninstall(none), 'nothing to remove: the weft service is not installed');
  } finally {
    t.cleanup();
  }
});

test('uninstall with no user bus removes the files and the enable link, and says how to stop a running service', async () => {
  const t = tempDir('weft-service-');
  try {
    const runner = systemRunner({ exec: noBus().exec });
    await installService(specFor(t.dir, 'linux'), { runner });
    const unit = join(t.dir, '.config', 'systemd', 'user', 'weft.service');
    // What `systemctl --user enable` made at an earlier login.
    const link = join(t.dir, '.config', 'systemd', 'user', 'default.target.wants', 'weft.service');
    mkdirSync(join(link, '..'), { recursive: true });
    symlinkSync(unit, link);
    const r = await uninstallService(specFor(t.dir, 'linux'), { runner });
    assert.deepEqual(r.removed, [unit, join(t.dir, '.weft', 'data', 'service.env'), link]);
    assert.deepEqual(r.ran, []);
    assert.match(
      formatUninstall(r),
      new RegExp(
        `^systemctl --user is not reachable \\(${NO_BUS}\\), so a running service was not stopped\\. If it runs, run:\\n    systemctl --user stop weft.service\\n    systemctl --user daemon-reload$`,
        'm',
      ),
    );
  } finally {
    t.cleanup();
  }
});

test('uninstall finds the environment file the installed unit names, even after the data dir moved', async () => {
  const t = tempDir('weft-service-');
  try {
    const runner = systemRunner({ exec: noBus().exec });
    await installService(specFor(t.dir, 'linux'), { runner });
    const r = await uninstallService(specFor(t.dir, 'linux', {}, { dataDir: join(t.dir, 'new') }), {
      runner,
    });
    assert.ok(r.removed.includes(join(t.dir, '.weft', 'data', 'service.env')), r.removed.join(', '));
  } finally {
    t.cleanup();
  }
});
test('status says not installed, then installed with which files, the manager state or why it is unknown, and whether the daemon answers', async () => {
  const t = tempDir('weft-service-');
  try {
    const spec = specFor(t.dir, 'linux');
    const runner = systemRunner({ exec: noBus().exec });
    const before = await serviceStatus(spec, { runner, probeDaemon: noDaemon });
    assert.equal(before.installed, false);
    assert.deepEqual(before.manager, { name: 'systemctl --user', reachable: false, reason: NO_BUS });
    assert.equal(
      formatStatus(before),
      [
        `installed: no (no ${join(t.dir, '.config', 'systemd', 'user', 'weft.service')})`,
        `service: unknown: no user service manager reachable (systemctl --user: ${NO_BUS})`,
        `daemon: not running (no daemon.json in ${join(t.dir, '.weft', 'data')})`,
      ].join('\n'),
    );
    await installService(spec, { runner });
    const after = await serviceStatus(spec, { runner, probeDaemon: noDaemon });
    assert.equal(after.installed, true);
    assert.deepEqual(
      after.files.map((f) => [f.role, f.exists, f.current]),
      [
        ['unit', true, true],
        ['environment', true, true],
      ],
    );
    assert.match(
      formatStatus(after),
      /^installed: .*weft\.service\ninstalled: .*service\.env\nservice: unknown/,
    );

    const sd = fakeSystemd();
    const live = systemRunner({ exec: sd.exec });
    await installService(spec, { runner: live });
    const running = await serviceStatus(spec, {
      runner: live,
      probeDaemon: async () => ({
        answers: true,
        url: 'http://127.0.0.1:9',
        pid: 4242,
        detail: 'answers at http://127.0.0.1:9 (pid 4242)',
      }),
    });
    assert.deepEqual(running.manager, {
      name: 'systemctl --user',
      reachable: true,
      state: 'active',
      enabled: 'enabled',
      pid: 4242,
    });
    assert.match(formatStatus(running), /^service: active, enabled \(pid 4242\)\ndaemon: answers at/m);
  } finally {
    t.cleanup();
  }
});

test('status reads daemon.json like the client: a stale file is reported as not answering', async () => {
  const t = tempDir('weft-service-');
  try {
    const spec = specFor(t.dir, 'linux');
    mkdirSync(spec.dataDir, { recursive: true });
    // A port nothing listens on: the daemon that wrote this is gone.
    const { freePort } = await import('../helpers/redis.js');
    const url = `http://127.0.0.1:${await freePort()}`;
    writeFileSync(
      join(spec.dataDir, 'daemon.json'),
      JSON.stringify({
        pid: 999999,
        url,
        computer: 'x',
        dataDir: spec.dataDir,
        tokenFile: '',
        logFile: '',
        startedAt: '',
      }),
    );
    const s = await serviceStatus(spec, { runner: systemRunner({ exec: noBus().exec }) });
    assert.equal(s.daemon.answers, false);
    assert.match(
      s.daemon.detail,
      new RegExp(`^not answering at ${url} \\(ECONNREFUSED\\); daemon\\.json names pid 999999$`),
    );
  } finally {
    t.cleanup();
  }
});

test('launchd: install bootstraps the agent in gui/<uid>, falls back to load -w, uninstall boots it out and removes the plist', async () => {
  const t = tempDir('weft-service-');
  try {
    const plist = join(t.dir, 'Library', 'LaunchAgents', 'dev.weft.daemon.plist');
    const ld = fakeLaunchd();
    const runner = systemRunner({ exec: ld.exec });
    const r = await installService(specFor(t.dir, 'darwin', { WEFT_API_PORT: '1' }), { runner });
    assert.equal(r.ok, true);
    assert.equal(mode(plist), '600');
    assert.deepEqual(
      r.ran.map((c) => c.command),
      ['launchctl enable gui/501/dev.weft.daemon', `launchctl bootstrap gui/501 ${plist}`],
    );
    assert.match(formatInstall(r), new RegExp(`^wrote ${plist} \\(mode 0600\\): WEFT_API_PORT$`, 'm'));
    assert.deepEqual(
      (await installService(specFor(t.dir, 'darwin', { WEFT_API_PORT: '1' }), { runner })).ran,
      [],
      'unchanged and loaded: nothing to do',
    );

    const changed = await installService(specFor(t.dir, 'darwin', { WEFT_API_PORT: '2' }), { runner });
    assert.deepEqual(
      changed.ran.map((c) => c.command),
      [
        'launchctl bootout gui/501/dev.weft.daemon',
        'launchctl enable gui/501/dev.weft.daemon',
        `launchctl bootstrap gui/501 ${plist}`,
      ],
    );

    const s = await serviceStatus(specFor(t.dir, 'darwin', { WEFT_API_PORT: '2' }), {
      runner,
      probeDaemon: noDaemon,
    });
    assert.deepEqual(s.manager, { name: 'launchctl', reachable: true, state: 'running', pid: 812 });

    const u = await uninstallService(specFor(t.dir, 'darwin'), { runner });
    assert.deepEqual(
      u.ran.map((c) => c.command),
      ['launchctl bootout gui/501/dev.weft.daemon'],
    );
    assert.deepEqual(u.removed, [plist]);
    assert.equal(ld.state.loaded, false);

    const legacy = fakeLaunchd({ refuseBootstrap: true });
    const again = await installService(specFor(t.dir, 'darwin'), {
      runner: systemRunner({ exec: legacy.exec }),
    });
    assert.equal(again.ok, true);
    assert.deepEqual(
      again.ran.map((c) => [c.command, c.ok]),
      [
        ['launchctl enable gui/501/dev.weft.daemon', true],
        [`launchctl bootstrap gui/501 ${plist}`, false],
        [`launchctl load -w ${plist}`, true],
      ],
    );
  } finally {
    t.cleanup();
  }
});

test('launchd unreachable (no launchctl, or no GUI session): the plist is written and the commands are printed', async () => {
  const t = tempDir('weft-service-');
  try {
    const plist = join(t.dir, 'Library', 'LaunchAgents', 'dev.weft.daemon.plist');
    const r = await installService(specFor(t.dir, 'darwin'), {
      runner: systemRunner({ exec: noBus().exec }),
    });
    assert.equal(r.ok, true);
    assert.ok(existsSync(plist));
    assert.match(
      formatInstall(r),
      new RegExp(
        `^launchctl is not reachable \\(launchctl is not installed\\), so nothing was loaded\\. To load it, run:\\n    launchctl enable gui/501/dev.weft.daemon\\n    launchctl bootstrap gui/501 ${plist}$`,
        'm',
      ),
    );
    const s = await serviceStatus(specFor(t.dir, 'darwin'), {
      runner: systemRunner({ exec: noBus().exec }),
      probeDaemon: noDaemon,
    });
    assert.match(
      formatStatus(s),
      /^service: unknown: no user service manager reachable \(launchctl: launchctl is not installed\)$/m,
    );
  } finally {
    t.cleanup();
  }
});

test('--load false writes the files and runs nothing, not even the probe', async () => {
  const t = tempDir('weft-service-');
  try {
    const sd = fakeSystemd();
    const r = await installService(specFor(t.dir, 'linux'), {
      runner: systemRunner({ exec: sd.exec }),
      load: false,
    });
    assert.deepEqual(sd.calls, []);
    assert.match(
      formatInstall(r),
      /^not loaded \(--load false\)\. To load it, run:\n {4}systemctl --user daemon-reload/m,
    );
  } finally {
    t.cleanup();
  }
});

test('an install after the data dir moved removes the previous environment file (it may hold secrets) and says so', async () => {
  const t = tempDir('weft-service-');
  try {
    const runner = systemRunner({ exec: noBus().exec });
    await installService(specFor(t.dir, 'linux', { WEFT_API_PORT: '1' }), { runner });
    const oldEnv = join(t.dir, '.weft', 'data', 'service.env');
    const r = await installService(
      specFor(t.dir, 'linux', { WEFT_API_PORT: '1' }, { dataDir: join(t.dir, 'new') }),
      { runner },
    );
    assert.equal(r.kind, 'changed');
    assert.deepEqual(r.removed, [oldEnv]);
    assert.equal(existsSync(oldEnv), false);
    assert.ok(existsSync(join(t.dir, 'new', 'service.env')));
    assert.match(
      formatInstall(r),
      new RegExp(`^removed ${oldEnv} \\(the environment file of the previous install\\)$`, 'm'),
    );
  } finally {
    t.cleanup();
  }
});
