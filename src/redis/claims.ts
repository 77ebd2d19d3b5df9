import { WeftError } from '../errors/index.js';
import type { Logger } from '../util/index.js';
import { connectRedis, createRedisClient, type RedisClient, topologyHint } from './client.js';
import { runScript } from './scripts.js';

export interface RedisClaimsInit {
  url: string;
  /** `url` lists the seed nodes of a Redis Cluster (each claim is one key: any slot will do). */
  cluster?: boolean;
  /** The claimant: this node's id. */
  nodeId: string;
  /** Claim key → what it names, for messages (e.g. `computer name 'laptop'`). */
  claims: Array<{ key: string; what: string; hint: string }>;
  /** Lifetime of a claim, ms (default 15 s); refreshed every third of it. */
  ttlMs?: number;
}

/**
 * Names a live node holds on a shared Redis (its computer name, its bus stream), so a second
 * node configured with the same ones is refused at start with one clear line instead of
 * silently sharing streams. Claims expire when a node dies without releasing them.
 */
export class RedisClaims {
  private client: RedisClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly ttlMs: number;

  constructor(
    private readonly init: RedisClaimsInit,
    private readonly logger: Logger,
  ) {
    this.ttlMs = init.ttlMs ?? 15_000;
  }

  /** Takes every claim or refuses (WEFT_CONFLICT naming the holder); keeps them fresh. */
  async start(): Promise<void> {
    const c = await createRedisClient(this.init.url, { cluster: this.init.cluster, lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
    c.on('error', (err: Error) => this.logger.debug({ err: err.message }, 'claims connection error'));
    try {
      await connectRedis(c, this.init.url);
      for (const claim of this.init.claims) {
        const r = await runScript(c, 'claim', [claim.key], [this.init.nodeId, this.ttlMs]).catch((err: unknown) => {
          const t = topologyHint(err);
          // Named: a bare "OOM command not allowed ... @user_script:13." said neither what nor where.
          throw t ? new WeftError(t.code, `taking the claim on ${claim.what} (${claim.key}) on Redis failed: ${(err as Error).message}: ${t.hint}`, { cause: err }) : err;
        });
        if (r !== 'OK') {
          const [holder, remaining] = r as [string, number];
          throw new WeftError(
            'WEFT_CONFLICT',
            `${claim.what} is in use on this Redis by another live node (${holder}); ${claim.hint} (or, if that node is gone, wait ${Math.ceil(Math.max(0, remaining) / 1000)} s for its claim to expire)`,
            { details: { key: claim.key, holder } },
          );
        }
      }
    } catch (err) {
      c.disconnect();
      throw err;
    }
    this.client = c;
    this.timer = setInterval(() => void this.refresh(), Math.max(100, Math.floor(this.ttlMs / 3)));
    this.timer.unref();
  }

  private async refresh(): Promise<void> {
    const c = this.client;
    if (c?.status !== 'ready') return;
    for (const claim of this.init.claims) {
      try {
        const r = await runScript(c, 'claim', [claim.key], [this.init.nodeId, this.ttlMs]);
        if (r !== 'OK') this.logger.error({ key: claim.key, holder: (r as string[])[0] }, `${claim.what} was taken by another node while this one ran`);
      } catch (err) {
        this.logger.debug({ err: (err as Error).message }, 'claim refresh failed');
      }
    }
  }

  /** Releases the claims this node still holds (best effort, bounded). Idempotent. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    const c = this.client;
    this.client = undefined;
    if (!c) return;
    if (c.status === 'ready') {
      await Promise.race([
        Promise.all(this.init.claims.map((claim) => runScript(c, 'release', [claim.key], [this.init.nodeId]).catch(() => undefined))),
        new Promise((r) => setTimeout(r, 1000).unref()),
      ]);
    }
    c.disconnect();
  }
}
