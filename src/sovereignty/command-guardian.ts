/** The command guardian: a program the user names judges each package (JSON on stdin, a verdict on stdout). */
import { spawn } from 'node:child_process';
import { type Guardian, GuardianError, type GuardianVerdict } from './guardian.js';
/** User options of the command guardian. */
export interface CommandGuardianInit {
  /** A shell command line (`autonomy.guardian_command`). */
  command: string;
  /** Milliseconds before the command is killed and the cartridge refused. Default 30,000. */
  timeoutMs?: number;
  /** Largest stdout read, in bytes. Default 1 MiB. */
  maxOutputBytes?: number;
  /** Extra environment for the command. */
  env?: NodeJS.ProcessEnv;
}

/**
 * A guardian that is any program: it gets the {@link GuardianRequest} as JSON on stdin and
 * answers `{"approve": true|false, "reason": "..."}` on stdout (the whole output, or its last
 * non-empty line, so chatter before the answer is fine). Exit status must be 0.
 * @throws {GuardianError} (from `judge`) on a timeout, a non-zero exit, or output that is not
 * such an object; the message names what was wrong.
 * @example
 * const g = commandGuardian({ command: 'node judge.js', timeoutMs: 10_000 });
 * const v = await g.judge(req); // { approve: false, reason: 'network access', guardian: 'command' }
 */
export function commandGuardian(init: CommandGuardianInit): Guardian {
  const timeoutMs = init.timeoutMs ?? 30_000;
  const maxOut = init.maxOutputBytes ?? 1024 * 1024;
  const label = `guardian command '${init.command}'`;
  return {
    name: 'command',
    judge(req, options) {
      options?.signal?.throwIfAborted();
      return new Promise<GuardianVerdict>((resolve, reject) => {
        const child = spawn(init.command, {
          shell: true,
          detached: process.platform !== 'win32',
          stdio: ['pipe', 'pipe', 'pipe'],
          // Not the daemon's environment (it may hold secrets such as the Telegram token): the
          // minimum a program needs to run, plus what the config gives it.
          env: { ...minimalEnv(), ...init.env },
        });
        let out = '';
        let err = '';
        let settled = false;
        const kill = () => {
          try {
            if (child.pid !== undefined && process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
            else child.kill('SIGKILL');
          } catch {
            // already gone
          }
        };
        const finish = (e: GuardianError | null, v?: GuardianVerdict) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          options?.signal?.removeEventListener('abort', onAbort);
          if (e) reject(e);
          else resolve(v as GuardianVerdict);
        };
        const onAbort = () => {
          kill();
          finish(new GuardianError(`${label} was aborted`));
        };
        options?.signal?.addEventListener('abort', onAbort, { once: true });
        const timer = setTimeout(() => {
          kill();
          finish(new GuardianError(`${label} gave no answer within ${timeoutMs} ms; it was killed`, { details: { timeoutMs } }));
        }, timeoutMs);
        child.stdout.setEncoding('utf8');
        child.stderr.setEncoding('utf8');
        child.stdout.on('data', (d: string) => {
          out += d;
          if (out.length > maxOut) {
            kill();
            finish(new GuardianError(`${label} printed more than ${maxOut} bytes`));
          }
        });
        child.stderr.on('data', (d: string) => {
          err = (err + d).slice(-2000);
        });
        child.on('error', (e) => finish(new GuardianError(`${label} could not start: ${e.message}`, { cause: e })));
        child.on('close', (code, signal) => {
          if (settled) return;
          if (code !== 0) {
            const why = signal ? `was killed by ${signal}` : `exited with status ${code}`;
            finish(new GuardianError(`${label} ${why}${err.trim() ? `: ${err.trim().slice(-500)}` : ''}`, { details: { exitCode: code } }));
            return;
          }
          try {
            finish(null, parseVerdict(out, label));
          } catch (e) {
            finish(e as GuardianError);
          }
        });
        // A command that does not read stdin closes it early; that is its right.
        child.stdin.on('error', () => undefined);
        child.stdin.end(`${JSON.stringify(req)}\n`);
      });
    },
  };
}

/** Parses a command's stdout: the whole of it, or else its last non-empty line. */
function parseVerdict(stdout: string, label: string): GuardianVerdict {
  const text = stdout.trim();
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
  let value: unknown;
  let parsed = false;
  for (const candidate of [text, lines[lines.length - 1] ?? '']) {
    try {
      value = JSON.parse(candidate);
      parsed = true;
      break;
    } catch {
      // try the next form
    }
  }
  const shown = text.length > 200 ? `${text.slice(0, 200)}...` : text;
  if (!parsed) {
    throw new GuardianError(`${label} printed no JSON answer (expected {"approve": true|false, "reason": "..."}), got: ${shown || '(nothing)'}`);
  }
  const v = value as { approve?: unknown; reason?: unknown } | null;
  if (typeof v !== 'object' || v === null || Array.isArray(v) || typeof v.approve !== 'boolean') {
    throw new GuardianError(`${label} answered without a boolean "approve" (expected {"approve": true|false, "reason": "..."}), got: ${shown}`);
  }
  if (v.reason !== undefined && typeof v.reason !== 'string') {
    throw new GuardianError(`${label} answered a "reason" that is not a string, got: ${shown}`);
  }
  return { approve: v.approve, reason: (v.reason ?? (v.approve ? 'approved' : 'refused')).slice(0, 1500), guardian: 'command' };
}

/** The variables a guardian program gets from the daemon: enough to find programs and speak UTF-8. */
export function minimalEnv(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TZ', 'TMPDIR']) if (process.env[k] !== undefined) out[k] = process.env[k];
  return out;
}
