/**
 * Bytes to text for feeds and source lists: the charset comes from a byte-order mark, else the
 * Content-Type header, else the XML declaration, else UTF-8. This is the order of RFC 7303
 * §3.2 (a BOM cannot lie; a header set by the server outranks what the file says of itself).
 */

/** How much of the head is searched for an XML declaration. */
const DECLARATION_WINDOW = 512;

/** The text and the encoding it was decoded with. */
export interface DecodedText {
  readonly text: string;
  /** WHATWG encoding name (`utf-8`, `windows-1252`, ...). */
  readonly encoding: string;
  /** Where the encoding came from. */
  readonly from: 'bom' | 'content-type' | 'xml-declaration' | 'default';
}

/**
 * Decodes a fetched body. Labels TextDecoder does not know are skipped (the next source of a
 * charset decides); bytes invalid in the chosen encoding become U+FFFD rather than an error.
 * @example
 * decodeFeedBytes(new Uint8Array([0x63, 0x61, 0x66, 0xe9]), 'text/xml; charset=iso-8859-1').text; // 'café'
 */
export function decodeFeedBytes(bytes: Uint8Array, contentType?: string): DecodedText {
  const bom = bomEncoding(bytes);
  if (bom) return { text: decodeWith(bom, bytes)!, encoding: bom, from: 'bom' };
  const header = contentType ? charsetOf(contentType) : undefined;
  if (header) {
    const text = decodeWith(header, bytes);
    if (text !== undefined) return { text, encoding: canonical(header), from: 'content-type' };
  }
  const declared = declaredEncoding(bytes);
  if (declared) {
    const text = decodeWith(declared, bytes);
    if (text !== undefined) return { text, encoding: canonical(declared), from: 'xml-declaration' };
  }
  return { text: decodeWith('utf-8', bytes)!, encoding: 'utf-8', from: 'default' };
}

/** The `charset` parameter of a Content-Type value, if any. */
export function charsetOf(contentType: string): string | undefined {
  for (const part of contentType.split(';').slice(1)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const value = part
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
      .trim();
    return value || undefined;
  }
  return undefined;
}

function bomEncoding(b: Uint8Array): string | undefined {
  if (b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return 'utf-8';
  if (b[0] === 0xfe && b[1] === 0xff) return 'utf-16be';
  if (b[0] === 0xff && b[1] === 0xfe) return 'utf-16le';
  return undefined;
}

/** The `encoding` of `<?xml ... ?>` at the head (read as ASCII, which every declarable encoding agrees with there). */
function declaredEncoding(b: Uint8Array): string | undefined {
  // UTF-16 without a BOM still starts `<?` as 3C 00 3F 00 or 00 3C 00 3F.
  if (b[0] === 0x3c && b[1] === 0x00 && b[2] === 0x3f && b[3] === 0x00) return 'utf-16le';
  if (b[0] === 0x00 && b[1] === 0x3c && b[2] === 0x00 && b[3] === 0x3f) return 'utf-16be';
  const head = Buffer.from(b.buffer, b.byteOffset, Math.min(b.byteLength, DECLARATION_WINDOW)).toString(
    'latin1',
  );
  const m = /^\s*<\?xml\s[^>]*?\bencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._:-]{0,40})["']/.exec(head);
  return m?.[1];
}

function canonical(label: string): string {
  try {
    return new TextDecoder(label).encoding;
  } catch {
    return label.toLowerCase();
  }
}

const LATIN1 = new Set([
  'iso-8859-1',
  'iso8859-1',
  'latin1',
  'l1',
  'us-ascii',
  'ascii',
  'windows-1252',
  'cp1252',
]);

function decodeWith(label: string, bytes: Uint8Array): string | undefined {
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(label.trim(), { fatal: false });
  } catch {
    // A Node built without full ICU knows only the Unicode encodings; Latin-1 is common enough
    // in old feeds to decode by hand.
    return LATIN1.has(label.trim().toLowerCase()) ? decodeWindows1252(bytes) : undefined;
  }
  // Every Latin-1 label means windows-1252 (WHATWG), and Node 20.18.3+ decodes that as plain
  // Latin-1, turning smart quotes and € into C1 controls (nodejs/node#60888): done by hand.
  return decoder.encoding === 'windows-1252' ? decodeWindows1252(bytes) : decoder.decode(bytes);
}

/** WHATWG index-windows-1252 for 0x80..0x9F; every other byte is its own code point. */
const CP1252_C1 = [
  0x20ac, 0x81, 0x201a, 0x192, 0x201e, 0x2026, 0x2020, 0x2021, 0x2c6, 0x2030, 0x160, 0x2039, 0x152, 0x8d,
  0x17d, 0x8f, 0x90, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013, 0x2014, 0x2dc, 0x2122, 0x161, 0x203a,
  0x153, 0x9d, 0x17e, 0x178,
];

function decodeWindows1252(bytes: Uint8Array): string {
  const latin1 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
  return latin1.replace(/[\x80-\x9f]/g, (c) => String.fromCharCode(CP1252_C1[c.charCodeAt(0) - 0x80]!));
}
