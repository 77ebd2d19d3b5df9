/**
 * The dedup stage judges a peer's event by a key the node derives, not by the key it brings:
 * a peer cannot have another node's (or this node's) events dropped by sending its own events
 * under their keys.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Envelope } from '../../src/envelope/index.js';
import { INGRESS_FACT } from '../../src/pipeline/index.js';
import { startTestNode } from '../helpers/node.js';

const TODO = 'domain.software-development.planning.todo.created';
const PEER = 'weft:ed25519:forger';

test("a peer's event under another event's idempotency key does not make that one a duplicate; a true repeat from a peer still is", async () => {
  const { node, close } = await startTestNode();
  const fromPeer = (
    env: Partial<Envelope> & { id: string; event: string; payload: Record<string, unknown> },
  ) =>
    node.processor.processBatch(
      [
        {
          position: `peer:${env.id}`,
          envelope: {
            version: 1,
            source: 'weft@forger',
            timestamp: new Date().toISOString(),
            level: 1,
            domain: 'mesh',
            visibility: 'cluster',
            description: 'x',
            origin: PEER,
            sourceComputer: 'forger',
            hops: 0,
            ...env,
          } as Envelope,
          logged: false,
          facts: { [INGRESS_FACT]: { peerNodeId: PEER, peerComputer: 'forger', signatureVerified: true } },
        },
      ],
      {},
    );
  try {
    // A ping that claims the key the todo 'ship' will have here.
    await fromPeer({
      id: '01a25090-0000-7000-8000-000000000001',
      event: 'mesh.test.ping',
      payload: { n: 1 },
      idempotencyKey: `${TODO}:ship`,
    });
    await node.emit({ event: TODO, payload: { slug: 'ship', title: 'Ship it' } });
    await node.idle();
    assert.equal(
      node.ns.notifications.list({ eventType: TODO }).items.length,
      1,
      "the todo is not taken for a duplicate of the peer's ping",
    );

    // The same todo from a peer (its content, whatever key it brings) is a duplicate.
    await fromPeer({
      id: '01a25090-0000-7000-8000-000000000002',
      event: TODO,
      domain: 'software-development',
      payload: { slug: 'ship', title: 'Ship it' },
      idempotencyKey: 'anything',
    });
    await node.idle();
    assert.equal(
      node.ns.notifications.list({ eventType: TODO }).items.length,
      1,
      'a true repeat from a peer is dropped',
    );
  } finally {
    await close();
  }
});
