import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const COMPILED_CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
/** The CLI: compiled (dist/, `npm test`), or its source when the tests run from theirs (`node --import tsx --test test/...`). */
export const CLI = existsSync(COMPILED_CLI) ? COMPILED_CLI : COMPILED_CLI.replace(/\.js$/, '.ts');
/** Node flags a CLI process needs: tsx's loader when the CLI is its source. */
export const CLI_NODE_ARGS: string[] = CLI.endsWith('.ts') ? ['--import', 'tsx'] : [];

/** Runs `weft ...` to completion. */
export function weft(args: string[], env: NodeJS.ProcessEnv, input?: string | Buffer): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...CLI_NODE_ARGS, CLI, ...args], { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 30_000, ...(input !== undefined ? { input } : {}) });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Runs `weft ...` to completion without blocking this process: for tests that serve something
 * (a feed) from the test process itself, which `weft()` would hold still while the CLI waits.
 */
export function weftAsync(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [...CLI_NODE_ARGS, CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The skewed-clock daemon of the chaos suite (test/fixtures/skewed-daemon.ts). */
export const SKEWED_DAEMON = fileURLToPath(new URL('../fixtures/skewed-daemon.js', import.meta.url));

/** Starts `weft daemon` (or another daemon entry point) and resolves once it printed its API address. */
export async function startDaemonProcess(
  env: NodeJS.ProcessEnv,
  entry: string[] = [CLI, 'daemon'],
): Promise<{ proc: ChildProcess; url: string; output: () => string; exited: Promise<number | null> }> {
  // WEFT_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/p" profiles each daemon (flags NODE_OPTIONS refuses).
  const nodeArgs = (process.env.WEFT_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, [...CLI_NODE_ARGS, ...nodeArgs, ...entry], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout?.on('data', (d) => (out += d));
  proc.stderr?.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not start: ${out}`)), 20_000);
    const check = () => {
      const m = /API:\s+(http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    };
    proc.stdout?.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited with ${code}: ${out}`));
    });
  });
  return { proc, url, output: () => out, exited };
}
