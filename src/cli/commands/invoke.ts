/** `weft invoke <peer> <handler>`: a remote call of a named handler on a peer, through the daemon's API. */
import { readFileSync } from 'node:fs';
import { Option } from 'commander';
import { isWeftError, WeftError } from '../../errors/index.js';
// Types only: a CLI call never loads the federation module.
import type { InvokeBudgets, InvokeResult, PipelineMeta } from '../../federation/index.js';
import type { CommandModule } from '../context.js';

const HELP = `
The call carries its deadline as remaining time and budgets that every hop reduces; the
peer refuses before any work when one is spent, when it has no such handler, or when the
call crosses enclaves without an approved pipeline and an accepted edge.

Built-in handlers on every node:
  node.health      computer, version, uptime, links, events processed
  query.events     its own recent cluster/public events: --payload '{"type":"build.*","limit":20}'
  invoke.forward   calls onward (off unless the callee sets federation.invoke_forward = true):
                   --payload '{"peer":"mars","handler":"node.health"}'
  invoke.list      the handlers it serves (also: weft invoke --list <peer>)
Installed cartridges serve the names their manifest lists under "invoke".

Examples:
  weft invoke saturn node.health
  weft invoke saturn query.events --payload '{"type":"deploy.*","limit":5}' --deadline 2s
  weft invoke saturn invoke.forward --payload '{"peer":"mars","handler":"node.health"}' --hops 2
  weft invoke prod-db node.health --pipeline demo/ingest --stage StageA --dag-run r42
  weft invoke --list saturn

Exit status: 0 on a result, 1 when the call timed out, was refused or failed, 2 on bad usage.
See docs/federation.md.
`;

/** What each refusal code means for the person who ran the call. */
const HINTS: Record<string, string> = {
  NO_HANDLER: 'the peer has no handler of that name; `weft invoke --list <peer>` shows what it serves',
  BUSY: 'the peer runs as many calls as it allows (federation.invoke_max_concurrent there); try again shortly',
  LIMIT: 'a budget was spent before the call could run (raised there as sec.limit.hit); give it more with --deadline, --hops, --bytes, --cpu-ms or --wall-ms',
  FORBIDDEN: 'the peer does not trust this node to invoke it',
  PIPELINE: 'the call crosses enclaves: it needs --pipeline (and --stage) of a pipeline approved there (federation.pipelines; raised there as sec.pipeline.reject)',
  EDGE: 'the peer does not accept calls over this enclave edge (federation.edges there; raised there as sec.edge.deny)',
  INVALID: 'the peer could not read the request or its payload',
  STOPPING: 'the peer is shutting down',
  FAILED: 'the handler ran and failed',
  TOO_LARGE: 'the result is larger than the peer sends back',
  TIMEOUT: 'the call ran out of time; the peer was told to cancel (raised here as transport.invoke.timeout)',
  CANCELLED: 'the call was cancelled',
};

function payloadArg(v: string | undefined): unknown {
  if (v === undefined) return null;
  let text = v;
  if (v.startsWith('@')) {
    try {
      text = readFileSync(v.slice(1), 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new WeftError('WEFT_VALIDATION', `--payload: cannot read ${v.slice(1)} (${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)})`);
    }
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new WeftError('WEFT_VALIDATION', `--payload: not JSON (${(err as Error).message})`);
  }
}

/**
 * A duration as a person writes it: `2s`, `500ms`, `1.5s`, `2m`, or plain milliseconds.
 * @example
 * parseDurationMs('2s'); // 2000
 */
export function parseDurationMs(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw new Error(`'${text}' is not a duration (examples: 500ms, 2s, 1.5s, 2m)`);
  const unit = m[2] ?? 'ms';
  const ms = Math.round(Number(m[1]) * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000));
  if (!(ms > 0)) throw new Error(`'${text}' is not a positive duration`);
  return ms;
}

/** A deadline the API takes: above 0, at most 24 h. */
const MAX_DEADLINE_MS = 86_400_000;

function duration(name: string) {
  return (v: string): number => {
    let ms: number;
    try {
      ms = parseDurationMs(v);
    } catch (err) {
      throw new WeftError('WEFT_VALIDATION', `${name}: ${(err as Error).message}`);
    }
    if (ms > MAX_DEADLINE_MS) throw new WeftError('WEFT_VALIDATION', `${name}: at most 24h, got '${v}'`);
    return ms;
  };
}

interface InvokeOptions {
  payload?: string;
  deadline: number;
  hops?: number;
  bytes?: number;
  cpuMs?: number;
  wallMs?: number;
  pipeline?: string;
  stage?: string;
  dagRun?: string;
  hopIndex?: number;
  list?: boolean;
}

/** Adds `weft invoke <peer> <handler> [...]` and `weft invoke --list <peer>`. */
export const invokeCommands: CommandModule = (ctx) => {
  const { program, int, out, g } = ctx;
  program
    .command('invoke <peer> [handler]')
    .description('call a named handler on a peer, with a deadline and budgets')
    .option('-p, --payload <json|@file>', 'payload as JSON (any JSON value), or @path to a JSON file')
    .addOption(new Option('-d, --deadline <duration>', 'how long to wait: 500ms, 2s, 1m (at most 24h)').argParser(duration('--deadline')).default(2000, '2s'))
    .option('--hops <n>', 'hops the call may take, this one included, 0 to 1000 (default 4)', int('--hops', { max: 1000 }))
    .option('--bytes <n>', 'payload bytes the call and its onward calls may carry (default 1 MiB)', int('--bytes'))
    .option('--cpu-ms <n>', 'CPU milliseconds it may use (default: the deadline)', int('--cpu-ms'))
    .option('--wall-ms <n>', 'wall-clock milliseconds the handler may run (default: the deadline)', int('--wall-ms'))
    .option('--pipeline <id>', 'pipeline_id of an approved pipeline (needed across enclaves)')
    .option('--stage <id>', 'stage_id within the pipeline')
    .option('--dag-run <id>', 'dag_run_id of this run')
    .option('--hop-index <n>', 'hop_index within the pipeline, 0 to 1000 (default 0)', int('--hop-index', { max: 1000 }))
    .option('-l, --list', 'list the handlers the peer serves (calls its invoke.list)')
    .addHelpText('after', HELP)
    .action(async (peer: string, handler: string | undefined, o: InvokeOptions) => {
      const name = o.list ? 'invoke.list' : handler;
      if (!name) throw new WeftError('WEFT_VALIDATION', 'name the handler to call (weft invoke <peer> <handler>), or use --list');
      const budgets: InvokeBudgets = {
        ...(o.hops !== undefined ? { hops: o.hops } : {}),
        ...(o.bytes !== undefined ? { bytes: o.bytes } : {}),
        ...(o.cpuMs !== undefined ? { cpuMs: o.cpuMs } : {}),
        ...(o.wallMs !== undefined ? { wallMs: o.wallMs } : {}),
      };
      if (!o.pipeline && (o.stage || o.dagRun || o.hopIndex !== undefined)) throw new WeftError('WEFT_VALIDATION', '--stage, --dag-run and --hop-index need --pipeline');
      const pipeline: PipelineMeta | undefined = o.pipeline
        ? { pipeline_id: o.pipeline, ...(o.stage ? { stage_id: o.stage } : {}), ...(o.dagRun ? { dag_run_id: o.dagRun } : {}), hop_index: o.hopIndex ?? 0 }
        : undefined;
      const client = await ctx.client();
      let r: InvokeResult;
      try {
        r = await client.invoke({
          peer,
          handler: name,
          payload: o.list ? null : payloadArg(o.payload),
          deadlineMs: o.deadline,
          ...(Object.keys(budgets).length ? { budgets } : {}),
          ...(pipeline ? { pipeline } : {}),
        });
      } catch (err) {
        throw explain(err, peer, name);
      }
      if (o.list && !g().json) {
        const handlers = (r.result as { handlers?: unknown } | null)?.handlers;
        out(Array.isArray(handlers) ? handlers.map(String).join('\n') : JSON.stringify(r.result, null, 2), r);
        return;
      }
      out(`${JSON.stringify(r.result, null, 2)}\n(${peer} ${name}: ${r.elapsedMs} ms, call ${r.callId})`, r);
    });
};

/** The error with what its code means added, so each refusal reads clearly. */
function explain(err: unknown, peer: string, handler: string): unknown {
  if (!isWeftError(err)) return err;
  const code = typeof err.details?.code === 'string' ? err.details.code : undefined;
  switch (err.code) {
    case 'WEFT_INVOKE_TIMEOUT':
    case 'WEFT_INVOKE_REJECTED': {
      const hint = code ? HINTS[code] : undefined;
      return new WeftError(err.code, `${err.message}${hint ? `\n  ${code}: ${hint}` : ''}`, { details: err.details ?? {} });
    }
    case 'WEFT_PEER_UNAVAILABLE':
      return new WeftError(err.code, `${err.message}\n  is ${peer} running? 'weft mesh status' shows the link`, { details: err.details ?? {} });
    case 'WEFT_NOT_FOUND':
      return new WeftError(err.code, `${err.message}\n  ${handler} was not sent: 'weft peers list' names the peers this node knows`, { details: err.details ?? {} });
    default:
      return err;
  }
}
