import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CartridgeLoadError,
  type CartridgeSuspension,
  createSandbox,
  SANDBOX_EVENT_ERRORS as E,
  ManifestError,
  type Sandbox,
  type SandboxEventResult,
  type SandboxInit,
  SandboxStoppedError,
} from '../../src/sovereignty/index.js';
import { ManualClock, silentLogger } from '../../src/util/index.js';
import { cartridge, envelope } from './fixtures.js';

const ECHO = cartridge('echo', 'function process(e) { return e; }');

async function withSandbox(
  init: SandboxInit,
  fn: (sandbox: Sandbox, suspensions: CartridgeSuspension[]) => Promise<void>,
): Promise<void> {
  const suspensions: CartridgeSuspension[] = [];
  const sandbox = createSandbox(init, {
    logger: silentLogger,
    clock: new ManualClock(),
    onSuspended: (s) => suspensions.push(s),
  });
  await sandbox.start();
  try {
    await fn(sandbox, suspensions);
  } finally {
    await sandbox.stop();
  }
}

function pidOf(sandbox: Sandbox): number {
  const status = sandbox.status();
  assert.equal(status.type, 'running');
  return status.type === 'running' ? status.pid : -1;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(check(), `timed out waiting for: ${what}`);
}

function codes(results: SandboxEventResult[]): string[] {
  return results.map((r) => (r.ok ? 'ok' : r.error.code));
}

describe('sandbox process lifecycle', () => {
  it('should start no process until a cartridge is loaded, and end it when the last is unloaded', async () => {
    await withSandbox({}, async (sandbox) => {
      assert.deepEqual(sandbox.status(), { type: 'idle' });
      await sandbox.load(ECHO);
      const pid = pidOf(sandbox);
      assert.ok(alive(pid));
      await sandbox.unload('echo');
      await until(() => !alive(pid), 'the idle process to exit');
      assert.deepEqual(sandbox.status(), { type: 'idle' });
      await sandbox.load(ECHO);
      assert.notEqual(pidOf(sandbox), pid);
    });
  });

  it('should be idempotent to start and stop, and refuse work when stopped', async () => {
    const sandbox = createSandbox({}, { logger: silentLogger, clock: new ManualClock() });
    await sandbox.start();
    await sandbox.start();
    await sandbox.load(ECHO);
    const pid = pidOf(sandbox);
    const first = sandbox.stop();
    assert.equal(sandbox.stop(), first);
    await first;
    assert.equal(alive(pid), false);
    assert.deepEqual(sandbox.status(), { type: 'stopped' });
    await assert.rejects(sandbox.process('echo', [envelope(1)]), SandboxStoppedError);
    await assert.rejects(sandbox.load(ECHO), SandboxStoppedError);
    // A stopped sandbox can start again.
    await sandbox.start();
    await sandbox.load(ECHO);
    const [r] = await sandbox.process('echo', [envelope(1)]);
    assert.ok(r?.ok);
    await sandbox.stop();
  });

  it('should fail queued events with WEFT_SANDBOX_STOPPED when stopped', async () => {
    await withSandbox({ timeoutMs: 5000 }, async (sandbox) => {
      await sandbox.load(
        cartridge(
          'slow',
          'function process(e) { const t = Date.now(); while (Date.now() - t < 300) {} return e; }',
        ),
      );
      const running = sandbox.process('slow', [envelope(1)]);
      const queued = sandbox.process('slow', [envelope(2)]);
      await new Promise((r) => setTimeout(r, 50));
      await sandbox.stop();
      assert.deepEqual(codes(await queued), [E.STOPPED]);
      assert.deepEqual(codes(await running), [E.STOPPED]);
    });
  });

  it('should refuse a package that does not load, with the reason', async () => {
    await withSandbox({ loadTimeoutMs: 200 }, async (sandbox) => {
      await assert.rejects(
        sandbox.load(cartridge('syntax', 'function process(e) { return e')),
        CartridgeLoadError,
      );
      await assert.rejects(
        sandbox.load(cartridge('no-entry', 'function other(e) { return e; }')),
        /entry point 'process'/,
      );
      await assert.rejects(
        sandbox.load(cartridge('top-loop', 'for (;;) {} function process(e) { return e; }')),
        /timed out/,
      );
      await assert.rejects(sandbox.load(cartridge('top-throw', 'throw new Error("nope");')), /nope/);
      await assert.rejects(
        sandbox.load(cartridge('Bad Name', 'function process(e) { return e; }')),
        ManifestError,
      );
      const [r] = await sandbox.process('syntax', [envelope(1)]);
      assert.equal(r?.ok === false && r.error.code, E.NOT_LOADED);
    });
  });

  it('should split large calls into batches and keep event order', async () => {
    await withSandbox({ maxBatch: 16 }, async (sandbox) => {
      await sandbox.load(
        cartridge(
          'count',
          'let seen = 0; function process(e) { seen++; return { event: "n", payload: { n: e.payload.n, seen } }; }',
        ),
      );
      const events = Array.from({ length: 100 }, (_, i) => envelope(i));
      const results = await sandbox.process('count', events);
      assert.equal(results.length, 100);
      results.forEach((r, i) => {
        assert.ok(r.ok);
        assert.deepEqual(r.event?.payload, { n: i, seen: i + 1 });
      });
    });
  });

  it('should answer per-event errors for input it cannot serialise and for an overload', async () => {
    await withSandbox({ maxPendingEvents: 4 }, async (sandbox) => {
      await sandbox.load(ECHO);
      const cyclic: Record<string, unknown> = { event: 'x' };
      cyclic.self = cyclic;
      assert.deepEqual(codes(await sandbox.process('echo', [envelope(1), cyclic, envelope(2)])), [
        'ok',
        E.BAD_INPUT,
        'ok',
      ]);
      const flood = Array.from({ length: 5 }, (_, i) => envelope(i));
      assert.deepEqual(codes(await sandbox.process('echo', flood)), Array(5).fill(E.OVERLOADED));
      assert.deepEqual(codes(await sandbox.process('missing', [envelope(1)])), [E.NOT_LOADED]);
    });
  });
});

describe('sandbox process kills', () => {
  it('should kill the process at the host deadline when the engine does not interrupt, then restart', async () => {
    // engineTimeoutMs far above timeoutMs stands for native code the engine cannot interrupt.
    await withSandbox({ timeoutMs: 50, engineTimeoutMs: 60_000, killGraceMs: 200 }, async (sandbox) => {
      await sandbox.load(ECHO);
      await sandbox.load(cartridge('stuck', 'function process(e) { for (;;) {} }'));
      const pid = pidOf(sandbox);
      const results = await sandbox.process('stuck', [envelope(1), envelope(2)]);
      assert.deepEqual(codes(results), [E.KILLED, E.KILLED]);
      assert.match((results[0] as Extract<SandboxEventResult, { ok: false }>).error.message, /deadline/);
      assert.equal(alive(pid), false);
      const stats = sandbox.stats('stuck');
      assert.equal(stats?.kills, 1);
      assert.equal(stats?.timeouts, 1);
      assert.equal(stats?.failures, 2);
      // Unrelated work goes on in a new process that has the other cartridges loaded again.
      const [r] = await sandbox.process('echo', [envelope(3)]);
      assert.ok(r?.ok, JSON.stringify(r));
      assert.notEqual(pidOf(sandbox), pid);
    });
  });

  it('should kill the process when its resident memory passes the cap, then restart', async () => {
    await withSandbox(
      { timeoutMs: 20_000, memoryLimitMb: 1024, rssCapMb: 200, rssPollMs: 20 },
      async (sandbox) => {
        await sandbox.load(ECHO);
        await sandbox.load(
          cartridge(
            'hog',
            `const keep = [];
           function process(e) {
             for (let i = 0; i < 60; i++) keep.push(new Uint8Array(8 << 20).fill(1));
             const t = Date.now(); while (Date.now() - t < 10000) {}
             return e;
           }`,
          ),
        );
        const pid = pidOf(sandbox);
        const results = await sandbox.process('hog', [envelope(1)]);
        assert.deepEqual(codes(results), [E.KILLED]);
        assert.match(
          (results[0] as Extract<SandboxEventResult, { ok: false }>).error.message,
          /memory passed the cap of 200 MB/,
        );
        assert.equal(alive(pid), false);
        assert.equal(sandbox.stats('hog')?.kills, 1);
        const [r] = await sandbox.process('echo', [envelope(2)]);
        assert.ok(r?.ok);
      },
    );
  });

  it('should fail only the batch in flight when the process dies, and serve the queued work', async () => {
    await withSandbox({ timeoutMs: 10_000 }, async (sandbox) => {
      await sandbox.load(ECHO);
      await sandbox.load(
        cartridge(
          'slow',
          'function process(e) { const t = Date.now(); while (Date.now() - t < 2000) {} return e; }',
        ),
      );
      const pid = pidOf(sandbox);
      const inFlight = sandbox.process('slow', [envelope(1)]);
      const queued = sandbox.process('echo', [envelope(2), envelope(3)]);
      await new Promise((r) => setTimeout(r, 200));
      process.kill(pid, 'SIGKILL');
      assert.deepEqual(codes(await inFlight), [E.CRASHED]);
      assert.deepEqual(codes(await queued), ['ok', 'ok']);
      assert.equal(sandbox.stats('slow')?.kills, 1);
      assert.equal(sandbox.stats('echo')?.kills, 0);
    });
  });

  it('should restart transparently after the process died while idle', async () => {
    await withSandbox({}, async (sandbox) => {
      await sandbox.load(ECHO);
      const pid = pidOf(sandbox);
      process.kill(pid, 'SIGKILL');
      await until(() => sandbox.status().type === 'idle', 'the sandbox to notice the exit');
      const [r] = await sandbox.process('echo', [envelope(1)]);
      assert.ok(r?.ok);
    });
  });
});

describe('sandbox suspension', () => {
  it('should suspend a cartridge after repeated failures, report it once, and refuse it until resumed', async () => {
    await withSandbox({ suspendAfter: 3 }, async (sandbox, suspensions) => {
      await sandbox.load(ECHO);
      await sandbox.load(
        cartridge(
          'flaky',
          'function process(e) { if (!e.payload.ok) throw new Error("bad day"); return e; }',
        ),
      );
      // Failures that are not consecutive do not suspend.
      await sandbox.process('flaky', [
        envelope(1),
        envelope(2),
        envelope(3, { ok: true }),
        envelope(4),
        envelope(5),
      ]);
      assert.equal(suspensions.length, 0);
      const results = await sandbox.process('flaky', [envelope(6, { ok: true })]);
      assert.deepEqual(codes(results), ['ok']);
      assert.equal(sandbox.stats('flaky')?.consecutiveFailures, 0);
      const more = await sandbox.process('flaky', [envelope(8), envelope(9), envelope(10)]);
      assert.deepEqual(codes(more), [E.THREW, E.THREW, E.THREW]);
      assert.equal(suspensions.length, 1);
      const [s] = suspensions;
      assert.equal(s?.name, 'flaky');
      assert.equal(s?.consecutiveFailures, 3);
      assert.equal(s?.lastError.code, E.THREW);
      assert.match(s?.lastError.message ?? '', /bad day/);
      assert.equal(sandbox.stats('flaky')?.status, 'suspended');
      const invocations = sandbox.stats('flaky')?.invocations;
      assert.deepEqual(codes(await sandbox.process('flaky', [envelope(11, { ok: true })])), [E.SUSPENDED]);
      assert.equal(sandbox.stats('flaky')?.invocations, invocations);
      // Others keep running.
      assert.deepEqual(codes(await sandbox.process('echo', [envelope(12)])), ['ok']);
      sandbox.resume('flaky');
      assert.equal(sandbox.stats('flaky')?.status, 'active');
      assert.deepEqual(codes(await sandbox.process('flaky', [envelope(13, { ok: true })])), ['ok']);
    });
  });

  it('should stop a batch at the failure that suspends the cartridge, not run an endless loop on every event of it', async () => {
    await withSandbox({ suspendAfter: 3, timeoutMs: 50 }, async (sandbox, suspensions) => {
      await sandbox.load(cartridge('loop', 'function process(e) { for (;;) {} }'));
      const t0 = performance.now();
      const results = await sandbox.process('loop', Array.from({ length: 40 }, (_, i) => envelope(i)));
      const ms = performance.now() - t0;
      assert.deepEqual(codes(results), [...Array(3).fill(E.TIMEOUT), ...Array(37).fill(E.SUSPENDED)]);
      assert.ok(ms < 40 * 50 * 0.5, `the batch took ${Math.round(ms)} ms: about 3 budgets, not 40`);
      assert.equal(suspensions.length, 1);
      assert.equal(sandbox.stats('loop')?.invocations, 3, 'events not run are not invocations');
      assert.equal(sandbox.stats('loop')?.timeouts, 3);
    });
  });

  it('should suspend a cartridge that keeps getting the process killed', async () => {
    await withSandbox(
      { suspendAfter: 2, timeoutMs: 20, engineTimeoutMs: 60_000, killGraceMs: 100 },
      async (sandbox, suspensions) => {
        await sandbox.load(cartridge('stuck', 'function process(e) { for (;;) {} }'));
        assert.deepEqual(codes(await sandbox.process('stuck', [envelope(1)])), [E.KILLED]);
        assert.deepEqual(codes(await sandbox.process('stuck', [envelope(2)])), [E.KILLED]);
        assert.equal(suspensions.length, 1);
        assert.equal(suspensions[0]?.stats.kills, 2);
        assert.deepEqual(codes(await sandbox.process('stuck', [envelope(3)])), [E.SUSPENDED]);
        // Its only cartridge is suspended: no process is kept for it.
        await until(() => sandbox.status().type === 'idle', 'the idle process to exit');
      },
    );
  });
});
