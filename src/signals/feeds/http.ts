/**
 * One bounded HTTP GET of a feed, on Node's own fetch (undici): redirects followed by hand (at
 * most N, http and https only), the body read as a stream and abandoned the moment it passes
 * the byte cap, the whole exchange under one wall-clock deadline. Nothing here throws for a
 * network or server problem; the outcome is data. A URL's user and password (undici refuses
 * a request whose URL carries them) become an `Authorization: Basic` header, sent to that
 * URL's origin only; messages name URLs with their credentials masked.
 */
import { displayUrl, maskUrlIn } from '../../util/index.js';

/** What a GET needs. */
export interface FeedGetInit {
  readonly headers: Record<string, string>;
  readonly maxBytes: number;
  /** Wall-clock deadline of the whole exchange, redirects and body included. */
  readonly timeoutMs: number;
  readonly maxRedirects: number;
  readonly signal?: AbortSignal;
}

/** Why a GET produced no response to look at. */
export type FeedGetFailure = 'network' | 'timeout' | 'too_large' | 'redirect' | 'aborted';

/** The outcome of a GET. */
export type FeedGetResult =
  | {
      readonly type: 'response';
      readonly status: number;
      readonly headers: Headers;
      /** Set for 200 only. */
      readonly body?: Uint8Array;
      /** The URL that answered, after redirects. */
      readonly url: string;
    }
  | { readonly type: 'failed'; readonly reason: FeedGetFailure; readonly message: string };

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

class Timeout extends Error {}

/**
 * Fetches `url` within the limits of `init`.
 * @example
 * const r = await getFeed('https://example.org/feed.xml', { headers: {}, maxBytes: 5 << 20, timeoutMs: 15_000, maxRedirects: 5 });
 */
export async function getFeed(url: string, init: FeedGetInit): Promise<FeedGetResult> {
  init.signal?.throwIfAborted();
  const ctrl = new AbortController();
  // A real timer on purpose: it bounds I/O in wall time, not the node's logic (see util/clock).
  const timer = setTimeout(
    () => ctrl.abort(new Timeout(`no complete answer within ${init.timeoutMs} ms`)),
    init.timeoutMs,
  );
  const onAbort = (): void => ctrl.abort(init.signal?.reason);
  init.signal?.addEventListener('abort', onAbort, { once: true });
  const { url: start, authorization } = splitCredentials(url);
  const origin = originOf(start);
  try {
    let current = start;
    for (let hop = 0; ; hop++) {
      // The credentials go to the feed's own origin, never to a host it redirects to.
      const headers = authorization && originOf(current) === origin ? { ...init.headers, authorization } : init.headers;
      const res = await fetch(current, { headers, redirect: 'manual', signal: ctrl.signal });
      if (REDIRECTS.has(res.status)) {
        await res.body?.cancel().catch(() => undefined);
        const location = res.headers.get('location');
        if (!location) return { type: 'response', status: res.status, headers: res.headers, url: current };
        if (hop >= init.maxRedirects)
          return {
            type: 'failed',
            reason: 'redirect',
            message: `more than ${init.maxRedirects} redirects (last to ${clip(displayUrl(location))})`,
          };
        let next: URL;
        try {
          next = new URL(location, current);
        } catch {
          return {
            type: 'failed',
            reason: 'redirect',
            message: `redirect to an invalid URL ${clip(displayUrl(location))}`,
          };
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          return {
            type: 'failed',
            reason: 'redirect',
            message: `redirect to ${next.protocol} refused (http and https only)`,
          };
        }
        current = next.href;
        continue;
      }
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined);
        return { type: 'response', status: res.status, headers: res.headers, url: current };
      }
      const declared = Number(res.headers.get('content-length') ?? Number.NaN);
      if (declared > init.maxBytes) {
        ctrl.abort();
        return {
          type: 'failed',
          reason: 'too_large',
          message: `body of ${declared} bytes announced, over the limit of ${init.maxBytes}`,
        };
      }
      const body = await readCapped(res, init.maxBytes, ctrl);
      if (!body)
        return {
          type: 'failed',
          reason: 'too_large',
          message: `body over the limit of ${init.maxBytes} bytes (reading stopped there)`,
        };
      return { type: 'response', status: 200, headers: res.headers, body, url: current };
    }
  } catch (err) {
    const reason = ctrl.signal.reason;
    if (reason instanceof Timeout) return { type: 'failed', reason: 'timeout', message: reason.message };
    if (init.signal?.aborted) return { type: 'failed', reason: 'aborted', message: 'aborted' };
    return { type: 'failed', reason: 'network', message: maskUrlIn(networkMessage(err), url) };
  } finally {
    clearTimeout(timer);
    init.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * The URL without its user and password, and those as a Basic authorization header value
 * (percent-decoded, as a browser sends them); a URL without them comes back as it is.
 */
function splitCredentials(raw: string): { url: string; authorization?: string } {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return { url: raw };
  }
  if (u.username === '' && u.password === '') return { url: raw };
  const user = safeDecode(u.username);
  const pass = safeDecode(u.password);
  u.username = '';
  u.password = '';
  return { url: u.href, authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** The body, or `undefined` once it passes `max` (the connection is then dropped, not drained). */
async function readCapped(
  res: Response,
  max: number,
  ctrl: AbortController,
): Promise<Uint8Array | undefined> {
  if (!res.body) return new Uint8Array(0);
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      ctrl.abort();
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

function networkMessage(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return `${cause.code}: ${clip(cause.message ?? '')}`;
  return clip(cause?.message ?? (err as Error).message ?? String(err));
}

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 199)}…` : s;
}
