/**
 * The identity backup a Phoenix restore starts from (`weft identity export --encrypted`,
 * `weft identity import`): the node's Ed25519 private key, encrypted with a passphrase.
 *
 * scrypt (N = 2^17, r = 8, p = 1: 128 MiB and a few hundred ms, the OWASP figure) turns the
 * passphrase into a 256-bit key; AES-256-GCM seals the key's PKCS#8 PEM with the file's header
 * (format, node id, fingerprint, KDF parameters) as additional data, so neither the key nor
 * what the header says about it can be changed unnoticed. A wrong passphrase and a damaged
 * file fail the same way (the tag does not verify). The file is JSON, mode 0600.
 */
import { createCipheriv, createDecipheriv, createPrivateKey, randomBytes, scryptSync } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, writeSync } from 'node:fs';
import { WeftError } from '../errors/index.js';
import { identityFromPrivateKey, type NodeIdentity } from '../identity/index.js';
import { canonicalJson } from '../util/index.js';

export const BACKUP_FORMAT = 'weft-identity-backup' as const;

export interface KdfParams {
  N: number;
  r: number;
  p: number;
}

/** The scrypt cost of new backups. */
export const DEFAULT_KDF: Readonly<KdfParams> = Object.freeze({ N: 2 ** 17, r: 8, p: 1 });

export interface KeyBackup {
  format: typeof BACKUP_FORMAT;
  version: 1;
  nodeId: string;
  fingerprint: string;
  computer?: string;
  createdAt: string;
  kdf: { name: 'scrypt'; salt: string } & KdfParams;
  cipher: 'aes-256-gcm';
  iv: string;
  tag: string;
  ciphertext: string;
}

/** Shortest passphrase accepted, and how many different characters it must have. */
export const MIN_PASSPHRASE = 12;
const MIN_DISTINCT = 6;
const COMMON = ['password', 'passphrase', 'weft', 'qwerty', 'letmein', '123456', 'abcdef', 'iloveyou', 'admin'];

/**
 * Refuses an empty or weak passphrase (too short, too few different characters, or mostly a
 * common word), naming what to change.
 * @throws WeftError WEFT_VALIDATION
 */
export function checkPassphrase(passphrase: string): void {
  const p = passphrase.normalize('NFKC');
  if (p.length === 0) throw new WeftError('WEFT_VALIDATION', 'the passphrase is empty: a backup of the node key needs one (WEFT_PASSPHRASE, or type it when asked)');
  if ([...p].length < MIN_PASSPHRASE) throw new WeftError('WEFT_VALIDATION', `the passphrase is too short: use at least ${MIN_PASSPHRASE} characters (a few unrelated words are easy to remember)`);
  if (new Set(p).size < MIN_DISTINCT) throw new WeftError('WEFT_VALIDATION', `the passphrase is too weak: use at least ${MIN_DISTINCT} different characters`);
  const lower = p.toLowerCase();
  for (const w of COMMON) {
    if (lower.includes(w) && lower.replaceAll(w, '').length < MIN_PASSPHRASE - 4) throw new WeftError('WEFT_VALIDATION', `the passphrase is too weak: it is mostly '${w}'`);
  }
}

function aad(b: Omit<KeyBackup, 'iv' | 'tag' | 'ciphertext' | 'createdAt' | 'computer'>): Buffer {
  return Buffer.from(canonicalJson({ format: b.format, version: b.version, nodeId: b.nodeId, fingerprint: b.fingerprint, kdf: b.kdf, cipher: b.cipher }));
}

function derive(passphrase: string, salt: Buffer, k: KdfParams): Buffer {
  return scryptSync(passphrase.normalize('NFKC'), salt, 32, { N: k.N, r: k.r, p: k.p, maxmem: 256 * k.N * k.r + 16 * 1024 * 1024 });
}

/**
 * Encrypts the identity's private key with a passphrase (checked first).
 * @example
 * const backup = encryptIdentity(identity, process.env.WEFT_PASSPHRASE ?? '', { computer: 'laptop' });
 */
export function encryptIdentity(identity: NodeIdentity, passphrase: string, opts: { computer?: string; now?: number; kdf?: KdfParams } = {}): KeyBackup {
  checkPassphrase(passphrase);
  const k = opts.kdf ?? DEFAULT_KDF;
  const salt = randomBytes(16);
  const head = {
    format: BACKUP_FORMAT,
    version: 1 as const,
    nodeId: identity.nodeId,
    fingerprint: identity.fingerprint,
    kdf: { name: 'scrypt' as const, salt: salt.toString('base64'), N: k.N, r: k.r, p: k.p },
    cipher: 'aes-256-gcm' as const,
  };
  const iv = randomBytes(12);
  const c = createCipheriv('aes-256-gcm', derive(passphrase, salt, k), iv);
  c.setAAD(aad(head));
  const pem = identity.privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const ciphertext = Buffer.concat([c.update(pem, 'utf8'), c.final()]);
  return {
    ...head,
    ...(opts.computer ? { computer: opts.computer } : {}),
    createdAt: new Date(opts.now ?? Date.now()).toISOString(),
    iv: iv.toString('base64'),
    tag: c.getAuthTag().toString('base64'),
    ciphertext: ciphertext.toString('base64'),
  };
}

/**
 * The identity in a backup.
 * @throws WeftError WEFT_VALIDATION for a file that is no Weft key backup (naming the field),
 *   WEFT_FORBIDDEN for a wrong passphrase or a file changed since it was written.
 */
export function decryptIdentity(data: unknown, passphrase: string): NodeIdentity {
  const b = (data ?? {}) as Partial<KeyBackup>;
  const bad = (field: string) => new WeftError('WEFT_VALIDATION', `not a Weft key backup: field '${field}' is missing or malformed`);
  if (b.format !== BACKUP_FORMAT) throw bad('format');
  if (b.version !== 1) throw new WeftError('WEFT_VALIDATION', `key backup version ${String(b.version)} is not one this Weft reads (1)`);
  if (typeof b.nodeId !== 'string') throw bad('nodeId');
  if (typeof b.fingerprint !== 'string') throw bad('fingerprint');
  const k = b.kdf;
  if (k?.name !== 'scrypt' || typeof k.salt !== 'string' || ![k.N, k.r, k.p].every((x) => Number.isInteger(x) && x > 0) || k.N > 2 ** 22 || k.r > 32 || k.p > 16) throw bad('kdf');
  if (b.cipher !== 'aes-256-gcm') throw bad('cipher');
  if (typeof b.iv !== 'string' || typeof b.tag !== 'string' || typeof b.ciphertext !== 'string') throw bad('ciphertext');
  if (passphrase.length === 0) throw new WeftError('WEFT_VALIDATION', 'the passphrase is empty (WEFT_PASSPHRASE, or type it when asked)');
  let pem: string;
  try {
    const d = createDecipheriv('aes-256-gcm', derive(passphrase, Buffer.from(k.salt, 'base64'), k), Buffer.from(b.iv, 'base64'));
    d.setAAD(aad(b as KeyBackup));
    d.setAuthTag(Buffer.from(b.tag, 'base64'));
    pem = Buffer.concat([d.update(Buffer.from(b.ciphertext, 'base64')), d.final()]).toString('utf8');
  } catch {
    throw new WeftError('WEFT_FORBIDDEN', 'wrong passphrase, or the backup file was changed since it was written');
  }
  const identity = identityFromPrivateKey(createPrivateKey({ key: pem, format: 'pem' }));
  if (identity.nodeId !== b.nodeId) throw new WeftError('WEFT_FORBIDDEN', 'the backup holds another key than its header names: the file was changed');
  return identity;
}

/**
 * Writes a backup as a 0600 file; an existing file is kept unless `force`.
 * @throws WeftError WEFT_CONFLICT when the file exists.
 */
export function writeBackupFile(path: string, backup: KeyBackup, opts: { force?: boolean } = {}): void {
  let fd: number;
  try {
    fd = openSync(path, opts.force ? 'w' : 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new WeftError('WEFT_CONFLICT', `${path} exists already; choose another --out or add --force`);
    throw new WeftError('WEFT_VALIDATION', `cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    writeSync(fd, `${JSON.stringify(backup, null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  // An overwritten file keeps its old mode otherwise.
  chmodSync(path, 0o600);
}

/** Reads a backup file's JSON. */
export function readBackupFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new WeftError('WEFT_NOT_FOUND', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : ((err as NodeJS.ErrnoException).code ?? (err as Error).message)}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new WeftError('WEFT_VALIDATION', `${path} is not a Weft key backup (not JSON)`);
  }
}
