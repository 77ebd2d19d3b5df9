/** The command guardian: a program the user names judges each package (JSON on stdin, a verdict on stdout). */
import { minimalEnv, runProgram } from '../util/index.js';
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
    async judge(req, options) {
      options?.signal?.throwIfAborted();
      let out: string;
      try {
        // Not the daemon's environment (it may hold secrets such as the Telegram token): the
        // minimum a program needs to run, plus what the config gives it.
        out = await runProgram({ command: init.command, timeoutMs, maxOutputBytes: maxOut, env: { ...minimalEnv(), ...init.env }, stdin: `${JSON.stringify(req)}\n`, ...(options?.signal ? { signal: options.signal } : {}) });
      } catch (err) {
        throw new GuardianError(`${label} ${(err as Error).message}`, { cause: err, details: { timeoutMs } });
      }
      return parseVerdict(out, label);
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

export { minimalEnv } from '../util/index.js';
