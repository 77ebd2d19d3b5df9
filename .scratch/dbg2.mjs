import { Redis } from 'ioredis';
import { createNode } from '/work/main/dist/src/daemon/index.js';
import { TestRedis } from '/work/main/dist/test/helpers/redis.js';
import { mkdtempSync } from 'node:fs';
import pino from 'pino';
const redis = await TestRedis.start();
const logger = pino({ level: 'debug' });
const node = await createNode({ dataDir: mkdtempSync('/tmp/dbgn-'), computer: 'test', redis: { url: redis.url, stream: 'weft:foreign' } }, { logger });
await node.start();
const r = new Redis(redis.url);
const stream='weft:foreign';
await r.xadd(stream, '*','event', 'domain.software-development.planning.todo.created', 'version', '1', 'source', 'python-producer','timestamp', '2026-11-25T08:00:00.123456+00:00', 'idempotency_key', '', 'level', '2', 'domain', 'software-development','entity', '', 'description', 'from redis-cli', 'visibility', 'local','payload', JSON.stringify({ slug: 'py-1', title: 'From Python' }), 'actions', '', 'terminal_when', '', 'resolution_shape', '');
await r.xadd(stream, '*', 'event', 'x.y', 'source', 's', 'timestamp', '2026-11-25T08:00:00Z', 'level', '1', 'payload', '{oops');
await r.xadd(stream, '*', 'event', 'x.y', 'source', 's', 'timestamp', '2026-11-25T08:00:00Z', 'level', '7', 'payload', '{}');
for (let i=0;i<30;i++){ await new Promise(r=>setTimeout(r,200)); console.log(JSON.stringify(node.processor.stats), node.ns.notifications.list({}).items.map(n=>n.eventType+JSON.stringify(n.payload).slice(0,200))); if (node.processor.stats.rejected>=2 && node.ns.notifications.count()>=2) break;}
console.log(await r.xrange(stream,'-','+'));
await node.stop(); r.disconnect(); await redis.stop();
