import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  encodeOptionsFor,
  intersectCaps,
  negotiateCaps,
  type TransportCap,
} from '../../src/transport/index.js';

const full: TransportCap[] = ['crc32c', 'deflate', 'aead', 'reliable', 'ordered'];
const plain: TransportCap[] = ['crc32c', 'reliable'];

test('a missing required cap fails the mount with transport.noprov naming what is missing', () => {
  const n = negotiateCaps('saturn', { required: ['crc32c', 'aead'] }, [{ provider: 'redis', caps: plain }]);
  assert.equal(n.ok, false);
  if (!n.ok) {
    assert.equal(n.event.type, 'transport.noprov');
    assert.deepEqual(n.event.missing, ['aead']);
    assert.match(n.event.message, /saturn/);
  }
  const none = negotiateCaps('saturn', { required: ['crc32c'] }, []);
  assert.equal(none.ok, false);
});

test('a missing preferred cap downgrades with transport.flatneg, unless warnDown is false', () => {
  const n = negotiateCaps('saturn', { required: ['crc32c'], preferred: ['deflate', 'aead'] }, [
    { provider: 'redis', caps: plain },
  ]);
  assert.ok(n.ok);
  assert.deepEqual(n.caps, { crc32c: true, deflate: false, aead: false });
  assert.equal(n.events.length, 1);
  const e = n.events[0]!;
  assert.equal(e.type, 'transport.flatneg');
  if (e.type === 'transport.flatneg') assert.deepEqual(e.dropped, ['deflate', 'aead']);
  const quiet = negotiateCaps('saturn', { required: ['crc32c'], preferred: ['deflate'], warnDown: false }, [
    { provider: 'redis', caps: plain },
  ]);
  assert.ok(quiet.ok);
  assert.deepEqual(quiet.events, []);
});

test('preferred caps choose between providers; ties go to the smallest name', () => {
  const offers = [
    { provider: 'redis', caps: plain },
    { provider: 'tls', caps: full },
  ];
  const n = negotiateCaps('saturn', { required: ['crc32c'], preferred: ['aead'] }, offers);
  assert.ok(n.ok);
  assert.equal(n.provider, 'tls');
  assert.deepEqual(n.events, []);
  const tie = negotiateCaps('saturn', { required: ['crc32c'] }, [
    { provider: 'tls', caps: full },
    { provider: 'memory', caps: full },
  ]);
  assert.ok(tie.ok);
  assert.equal(tie.provider, 'memory');
});

test('the remote end limits what a provider offers', () => {
  const offered = intersectCaps(new Set(full), ['crc32c', 'deflate']);
  const n = negotiateCaps('venus', { required: ['crc32c'], preferred: ['deflate', 'aead'] }, [
    { provider: 'tls', caps: offered },
  ]);
  assert.ok(n.ok);
  assert.deepEqual(n.caps, { crc32c: true, deflate: true, aead: false });
});

test('encode options follow the negotiated caps, and aead needs a link key', () => {
  assert.deepEqual(encodeOptionsFor({ crc32c: true, deflate: false, aead: false }), {
    crc32c: true,
    deflate: false,
  });
  assert.throws(() => encodeOptionsFor({ crc32c: false, deflate: false, aead: true }));
  const key = new Uint8Array(32);
  assert.deepEqual(encodeOptionsFor({ crc32c: false, deflate: true, aead: true }, key).aead, { key });
});
