/**
 * A URL as it may be shown: feed URLs carry credentials in their userinfo or their query
 * (`https://user:pass@host/feed?token=…`), and what `weft config show`, the log, `weft signals
 * sources` and the events print must not repeat them.
 */

/**
 * The URL with its userinfo and the values of its query parameters masked; the scheme, host,
 * path and parameter names stay, so one can still tell which feed it is. Not a URL: returned
 * with anything that looks like `user:pass@` masked.
 * @example
 * displayUrl('https://feeduser:hunter2@host/auth.xml?token=SECRET&x=1'); // 'https://***@host/auth.xml?token=***&x=***'
 */
export function displayUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return raw.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1***@');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return raw.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/gi, '$1***@');
  const userinfo = u.username !== '' || u.password !== '';
  u.username = '';
  u.password = '';
  const query =
    u.search === ''
      ? ''
      : `?${u.search
          .slice(1)
          .split('&')
          .map((p) => (p.includes('=') ? `${p.slice(0, p.indexOf('='))}=***` : p))
          .join('&')}`;
  return `${u.protocol}//${userinfo ? '***@' : ''}${u.host}${u.pathname}${query}${u.hash}`;
}

/**
 * `text` with every occurrence of `url` (as given, and as the URL parser writes it) replaced by
 * its {@link displayUrl}: for an error message that quotes the URL it was about.
 * @example
 * maskUrlIn('cannot fetch https://u:p@h/f', 'https://u:p@h/f'); // 'cannot fetch https://***@h/f'
 */
export function maskUrlIn(text: string, url: string): string {
  const shown = displayUrl(url);
  let out = text.split(url).join(shown);
  try {
    const href = new URL(url).href;
    if (href !== url) out = out.split(href).join(shown);
  } catch {
    // not a URL: only the text as given
  }
  return out.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*:[^/@\s]*@/gi, '$1***@');
}

/**
 * Each URL of a comma-separated list (`redis.url`, `nats.url`) with the password in its userinfo
 * masked (`user:***@`), read up to the URL's last '@' as a URL parser reads it, so a password
 * holding an '@' is masked whole. Userinfo without a ':' is masked whole when `loneIsSecret`
 * (a NATS token), else kept (a Redis user name).
 * @example
 * maskUrlPasswords('nats://u:p@ss@h:4222,nats://t0k@g:4222', true); // 'nats://u:***@h:4222,nats://***@g:4222'
 */
export function maskUrlPasswords(list: string, loneIsSecret: boolean): string {
  return list
    .split(',')
    .map((u) =>
      u.replace(/^(\s*[a-z][a-z0-9+.-]*:\/\/)(.*)@/i, (whole, scheme: string, cred: string) => {
        const colon = cred.indexOf(':');
        if (colon >= 0) return `${scheme}${cred.slice(0, colon)}:***@`;
        return loneIsSecret ? `${scheme}***@` : whole;
      }),
    )
    .join(',');
}
