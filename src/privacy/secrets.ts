/**
 * The secrets filter: finds credentials in a command line (or a cwd) and replaces each with
 * `[REDACTED:<name>]` before anything is stored. Pure: no I/O, no state between calls.
 *
 * Every pattern is written to run in linear time on hostile input: each one starts at a
 * literal prefix or behind a lookbehind that allows one start per run of token characters, and
 * every repetition is bounded, so a start that fails gives up after a bounded number of steps.
 */
import { ConfigError } from '../errors/index.js';

export interface SecretPattern {
  /** Kebab-case and stable: it is stored inside `[REDACTED:<name>]`. */
  name: string;
  description: string;
  /** Global flag. Shared objects: the filter resets `lastIndex` before each use. */
  regex: RegExp;
  /** The capture group that holds the secret; the whole match when absent. */
  group?: number;
}

export interface Redaction {
  text: string;
  /** How many `[REDACTED:…]` markers were put in. */
  redacted: number;
  /** The distinct names in those markers, in the order they appear in the text. */
  kinds: string[];
}

const NAME = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/**
 * A value the way a shell line carries it: quoted (spaces allowed) or one bare word. An
 * unclosed quote still yields its first word. A shell expansion (`$TOKEN`, `${X}`, `$(cmd)`)
 * names a secret without being one, and a marker from an earlier pass is already redacted.
 */
const VALUE = `(?!["']?\\$[A-Za-z_{(])(?!["']?\\[REDACTED:)(?:"[^"\\n]{1,512}"|'[^'\\n]{1,512}'|["']?[^\\s"'&;|<>]{1,512})`;

/** `password`, `PASSWORD`, `Password`, and for two words `api_key`, `api-key`, `apikey`, `API_KEY`, `apiKey`, `ApiKey`, `Api-Key`. */
function spellings(words: readonly string[]): string[] {
  const cap = (w: string) => w.charAt(0).toUpperCase() + w.slice(1);
  const out = new Set<string>();
  for (const sep of ['_', '-', '']) {
    out.add(words.join(sep));
    out.add(words.join(sep).toUpperCase());
    out.add(words.map(cap).join(sep));
  }
  out.add(words[0] + words.slice(1).map(cap).join(''));
  return [...out];
}

/** Longest first, so one alternative never shadows a longer one that shares its start. */
function alternation(names: Iterable<string>): string {
  return [...new Set(names)].sort((a, b) => b.length - a.length || (a < b ? -1 : 1)).join('|');
}

const ARG_WORDS: readonly (readonly string[])[] = [
  ['password'],
  ['passwd'],
  ['secret'],
  ['client', 'secret'],
  ['token'],
  ['access', 'token'],
  ['auth', 'token'],
  ['refresh', 'token'],
  ['api', 'key'],
  ['api', 'token'],
  ['passphrase'],
];
/**
 * A flag's own prefix before one of those names (`--http-password`, `--proxy-password`,
 * `--bind-passphrase`); never `--no-…` or `--ask-…` (`--no-password` says not to prompt,
 * `--ask-password` to prompt: the next word is no password).
 */
const FLAG_PREFIX = '(?!no-|ask-)(?:[a-z0-9]{1,16}-){0,3}';
// `pwd` only in lower case: `PWD=/some/dir` is the shell's working directory, not a password.
const ARG_NAMES = alternation([...ARG_WORDS.flatMap(spellings), 'pwd', '_authToken']);

function secret(
  name: string,
  description: string,
  source: string,
  opts: { flags?: string; group?: number } = {},
): SecretPattern {
  const flags = `g${opts.group !== undefined ? 'd' : ''}${opts.flags ?? ''}`;
  return {
    name,
    description,
    regex: new RegExp(source, flags),
    ...(opts.group !== undefined ? { group: opts.group } : {}),
  };
}

/** A variable named like a secret: *_TOKEN, *_SECRET, *PASSWORD, *_API_KEY, *_AUTH, SECRET_KEY_BASE … (in capitals; a pattern's `i` flag widens it). */
const SECRET_NAME = '[A-Za-z][A-Za-z0-9_]{0,63}(?:_(?:TOKEN|SECRET|PWD|PASS|PAT|API_KEY|APIKEY|ACCESS_KEY|SECRET_KEY|PRIVATE_KEY|AUTH_KEY|MASTER_KEY|KEY_BASE|AUTH|CREDENTIALS?)|PASSWORD|PASSWD)';

const KEY_LINE = '(?: [A-Z0-9]{1,20}){0,3} PRIVATE KEY(?: BLOCK)?-----';

/**
 * The built-in patterns, most specific first: where two overlap, the text they cover together
 * is redacted once under the name that comes first here.
 */
export const SECRET_PATTERNS: readonly SecretPattern[] = Object.freeze([
  secret(
    'gcp-service-account-key',
    'the private_key of a Google Cloud service-account JSON key',
    '"private_key"\\s{0,8}:\\s{0,8}"(-----BEGIN[^"]{1,8192})"',
    { group: 1 },
  ),
  secret(
    'pem-private-key',
    'a PEM private key block (RSA, EC, OpenSSH, PKCS#8, PGP), or its BEGIN line and the base64 after it',
    // The body cannot contain `-----`, so it stops at the END line (or the next BEGIN) and the
    // first alternative never scans past it; without an END line only base64 is taken.
    `-----BEGIN${KEY_LINE}(?:(?:[^-]|-(?!----)){0,8192}-----END${KEY_LINE}|[A-Za-z0-9+/=\\s\\\\]{0,8192})`,
  ),
  secret(
    'aws-access-key-id',
    'an AWS access key id (AKIA… long-term, ASIA… temporary)',
    '(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])',
  ),
  secret(
    'aws-secret-access-key',
    'an AWS secret access key given after aws_secret_access_key / AWS_SECRET_ACCESS_KEY',
    `(?<![A-Za-z0-9_])aws_?secret_?access_?key["']?(?:\\s{0,4}[:=]\\s{0,4}|\\s{1,4})["']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])`,
    { flags: 'i', group: 1 },
  ),
  secret(
    'gcp-api-key',
    'a Google Cloud API key (AIza…)',
    '(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])',
  ),
  secret(
    'github-token',
    'a GitHub token (ghp_, gho_, ghu_, ghs_, ghr_)',
    '(?<![A-Za-z0-9_])gh[pousr]_[A-Za-z0-9]{36,251}',
  ),
  secret(
    'github-pat',
    'a GitHub fine-grained personal access token (github_pat_…)',
    '(?<![A-Za-z0-9_])github_pat_[A-Za-z0-9_]{22,244}',
  ),
  secret(
    'gitlab-token',
    'a GitLab personal access token (glpat-…)',
    '(?<![A-Za-z0-9_-])glpat-[A-Za-z0-9_-]{20,250}',
  ),
  secret(
    'slack-webhook',
    'a Slack incoming-webhook URL',
    'https?://hooks\\.slack\\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{16,255}',
  ),
  secret(
    'slack-token',
    'a Slack token (xoxb-, xoxp-, xoxa-, xoxr-, xoxs-)',
    '(?<![A-Za-z0-9_-])xox[abprs]-[A-Za-z0-9]{1,64}-[A-Za-z0-9-]{8,255}',
  ),
  secret(
    'stripe-key',
    'a Stripe secret, restricted or live publishable key (sk_live_, sk_test_, rk_live_, rk_test_, pk_live_)',
    '(?<![A-Za-z0-9_])(?:(?:sk|rk)_(?:live|test)|pk_live)_[A-Za-z0-9]{16,247}',
  ),
  secret(
    'anthropic-key',
    'an Anthropic API key (sk-ant-…)',
    '(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{20,255}',
  ),
  secret(
    'openai-key',
    'an OpenAI API key (sk-proj-…, sk-svcacct-…, sk-admin-…, or sk- and 32+ letters and digits)',
    // A kebab-case word such as `sk-feature-branch-name` is no key: without a known prefix the
    // key is one unbroken run of letters and digits.
    '(?<![A-Za-z0-9_-])sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,255}|[A-Za-z0-9]{32,255}(?![A-Za-z0-9_-]))',
  ),
  secret(
    'sendgrid-key',
    'a SendGrid API key (SG.x.y)',
    '(?<![A-Za-z0-9_-])SG\\.[A-Za-z0-9_-]{16,64}\\.[A-Za-z0-9_-]{16,128}',
  ),
  secret(
    'twilio-api-key',
    'a Twilio API key sid (SK and 32 hex digits)',
    '(?<![A-Za-z0-9_])SK[0-9a-fA-F]{32}(?![A-Za-z0-9_])',
  ),
  secret(
    'npm-token',
    'an npm access token (npm_ and 36 characters)',
    '(?<![A-Za-z0-9_])npm_[A-Za-z0-9]{36}(?![A-Za-z0-9_])',
  ),
  secret(
    'pypi-token',
    'a PyPI API token (pypi-AgEIcHlwaS5vcmc…)',
    '(?<![A-Za-z0-9_-])pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,1000}',
  ),
  secret(
    'digitalocean-token',
    'a DigitalOcean token (dop_v1_, doo_v1_, dor_v1_ and 64 hex digits)',
    '(?<![A-Za-z0-9_])do[opr]_v1_[a-f0-9]{64}(?![A-Za-z0-9_])',
  ),
  secret(
    'huggingface-token',
    'a Hugging Face token (hf_ and 34 or more letters)',
    '(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{34,40}(?![A-Za-z0-9_])',
  ),
  secret(
    'azure-storage-key',
    'the AccountKey (or SharedAccessKey) of an Azure connection string',
    '(?<![A-Za-z0-9])(?:AccountKey|SharedAccessKey)=([A-Za-z0-9+/]{20,255}={0,2})',
    { group: 1 },
  ),
  secret(
    'jwt',
    'a JSON Web Token (eyJ….eyJ….signature)',
    '(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,2048}\\.eyJ[A-Za-z0-9_-]{5,8192}\\.[A-Za-z0-9_-]{8,4096}',
  ),
  secret(
    'authorization-bearer',
    'the token of an HTTP `Authorization: Bearer …` (or `token …`) header, also as httpie writes it (`Authorization:"Bearer …"`)',
    '(?<![A-Za-z0-9_-])(?:Proxy-)?Authorization:\\s{0,4}["\']?(?:Bearer|token)\\s{1,4}([A-Za-z0-9._~+/=-]{4,4096})',
    { flags: 'i', group: 1 },
  ),
  secret(
    'authorization-basic',
    'the credentials of an HTTP `Authorization: Basic …` header',
    '(?<![A-Za-z0-9_-])(?:Proxy-)?Authorization:\\s{0,4}["\']?Basic\\s{1,4}([A-Za-z0-9+/]{4,4096}={0,2})',
    { flags: 'i', group: 1 },
  ),
  secret(
    'api-key-header',
    'the value of an API-key HTTP header (X-API-Key, X-Auth-Token, PRIVATE-TOKEN, X-Access-Token)',
    `(?<![A-Za-z0-9_-])(?:X-API-Key|API-Key|X-Auth-Token|Private-Token|X-Access-Token):\\s{0,4}(${VALUE})`,
    { flags: 'i', group: 1 },
  ),
  secret(
    'url-credentials',
    'the password in a URL (scheme://user:password@host, also with no user: redis://:password@host)',
    // The password may hold `@` (unencoded): the greedy run backs off to the last `@` before the host.
    `(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]{0,31}://[^\\s:/?#@"'<>]{0,256}:(?!\\$[A-Za-z_{(])(?!\\[REDACTED:)([^\\s/?#"'<>]{1,512})@`,
    { group: 1 },
  ),
  secret(
    'curl-user-password',
    'the password of `curl -u user:password`',
    `(?<![A-Za-z0-9_-])curl(?=\\s)[^\\n|;&]{0,256}?\\s(?:-u|--user)\\s{0,4}["']?[^\\s:"']{1,256}:(?!\\$[A-Za-z_{(])(?!\\[REDACTED:)([^\\s"']{1,512})`,
    { group: 1 },
  ),
  secret(
    'mysql-password',
    'the password glued to the -p of mysql, mysqldump, mysqladmin or mariadb (`-psecret`)',
    `(?<![A-Za-z0-9_-])(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump)(?=\\s)[^\\n|;&]{0,256}?\\s-p(${VALUE})`,
    { group: 1 },
  ),
  secret(
    'login-password-flag',
    'the -p password of sshpass, of a container-registry login (docker, podman, nerdctl, buildah, helm registry, oras, skopeo), of az login or cf login',
    `(?<![A-Za-z0-9_-])(?:sshpass|(?:docker|podman|nerdctl|buildah|oras|skopeo|helm\\s{1,4}registry|az|cf)\\s{1,4}login)(?=\\s)[^\\n|;&]{0,256}?\\s-p\\s{0,4}(?!-)(${VALUE})`,
    { group: 1 },
  ),
  secret(
    'cli-password-flag',
    'the password a command takes after a flag of its own: redis-cli -a / --pass, ldapsearch (and the other ldap* tools) -w, zip / unzip -P, ssh-keygen -N / -P, openssl -k, and `git config … x.password …`',
    `(?<![A-Za-z0-9_-])(?:redis-cli(?=\\s)[^\\n|;&]{0,256}?\\s(?:-a|--pass)|ldap[a-z]{3,8}(?=\\s)[^\\n|;&]{0,256}?\\s-w|(?:un)?zip(?=\\s)[^\\n|;&]{0,256}?\\s-P|ssh-keygen(?=\\s)[^\\n|;&]{0,256}?\\s-[NP]|openssl(?=\\s)[^\\n|;&]{0,256}?\\s-k|git\\s{1,4}config(?=\\s)[^\\n|;&]{0,256}?\\s[A-Za-z0-9_.-]{0,64}\\.(?:password|token|secret))\\s{1,4}(?!-)(${VALUE})`,
    { group: 1 },
  ),
  secret(
    'openssl-pass-arg',
    'a password given inline to openssl (`-passin pass:…`, `-passout pass:…`, `-pass pass:…`)',
    `(?<![A-Za-z0-9_-])-pass(?:in|out)?\\s{1,4}["']?pass:([^\\s"']{1,512})`,
    { group: 1 },
  ),
  secret(
    'archive-password',
    'the password glued to the -p of 7z (`7z a -psecret …`)',
    `(?<![A-Za-z0-9_-])7z[ar]?(?=\\s)[^\\n|;&]{0,256}?\\s-p(${VALUE})`,
    { group: 1 },
  ),
  secret(
    'smb-user-password',
    'the password after the % of a Samba user (`smbclient -U user%password`)',
    `(?<![A-Za-z0-9_-])(?:smbclient|rpcclient|smbcacls|smbget|smbmap|net)(?=\\s)[^\\n|;&]{0,256}?\\s(?:-U\\s{0,4}|--user(?:name)?=)["']?[^\\s%"']{1,256}%([^\\s"']{1,512})`,
    { group: 1 },
  ),
  secret(
    'positional-password',
    'the password a command takes as a plain word: the last word of `htpasswd -b …`, of `cf auth user password`',
    `(?<![A-Za-z0-9_-])(?:htpasswd(?=[^\\n|;&]{0,64}\\s-[A-Za-z]{0,7}b)[^\\n|;&]{0,256}?|cf\\s{1,4}auth\\s{1,4}[^\\s|;&]{1,256})\\s(${VALUE})(?=\\s{0,4}(?:$|[\\n|;&]))`,
    { group: 1 },
  ),
  secret(
    'echoed-password',
    'a password echoed into a command that reads it from its input (`echo secret | docker login --password-stdin`, `echo secret | sudo -S …`)',
    `(?<![A-Za-z0-9_-])(?:echo|printf)(?:\\s{1,4}-[neE]{1,3})?\\s{1,4}(${VALUE})\\s{0,4}\\|[^\\n;&]{0,256}?(?:--password-stdin|sudo\\s(?:[^\\n|;&]{0,64}?\\s)?-[A-Za-z]{0,7}S(?![A-Za-z]))`,
    { group: 1 },
  ),
  secret(
    'here-string-password',
    'a password handed to such a command as a here-string (`sudo -S ls <<< secret`, `docker login --password-stdin <<< secret`)',
    `(?<![A-Za-z0-9_-])(?:sudo\\s(?:[^\\n|;&]{0,64}?\\s)?-[A-Za-z]{0,7}S(?![A-Za-z])|--password-stdin)[^\\n|;&]{0,256}?<<<\\s{0,4}(${VALUE})`,
    { group: 1 },
  ),
  secret(
    'vault-token',
    'a HashiCorp Vault token (hvs., hvb., hvr., or s. and 24 letters and digits)',
    '(?<![A-Za-z0-9_.-])(?:hv[sbr]\\.[A-Za-z0-9_-]{24,512}|s\\.[A-Za-z0-9]{24})(?![A-Za-z0-9_.-])',
  ),
  secret(
    'secret-env-assignment',
    'a value assigned to a variable named *_TOKEN, *_SECRET, *PASSWORD, *_API_KEY, *_AUTH, SECRET_KEY_BASE and the like (`export GITHUB_TOKEN=…`, `PGPASSWORD=…`)',
    `(?<![A-Za-z0-9_$.-])${SECRET_NAME}["']?\\s{0,2}=\\s{0,2}(${VALUE})`,
    { flags: 'i', group: 1 },
  ),
  secret(
    'secret-variable-set',
    'a value given to such a variable without `=`: fish `set -gx DB_PASSWORD …`, csh `setenv GITHUB_TOKEN …`, `gh secret set API_TOKEN --body …`',
    `(?<![A-Za-z0-9_-])(?:(?:set(?:\\s{1,4}-{1,2}[A-Za-z-]{1,16}){0,4}|setenv)\\s{1,4}${SECRET_NAME}|gh\\s{1,4}secret\\s{1,4}set\\s{1,4}[^\\s|;&]{1,256}(?:\\s{1,4}-{1,2}[A-Za-z-]{1,16}(?:\\s{1,4}[^\\s-][^\\s|;&]{0,255})?){0,4}?\\s{1,4}(?:--body|-b))\\s{1,4}(?!-)(${VALUE})`,
    // Names in capitals only here: without the `=`, prose (`set aws_secret_access_key in …`) reads alike.
    { group: 1 },
  ),
  secret(
    'secret-flag',
    'the value after a --password, --token, --secret, --api-key, --passphrase … flag (also --http-password and the like) given as a separate word',
    `(?<![A-Za-z0-9_-])--${FLAG_PREFIX}(?:${ARG_NAMES})\\s{1,4}(?!-)(${VALUE})`,
    { group: 1 },
  ),
  secret(
    'password-arg',
    'the value of a password=, passwd=, pwd=, secret=, token=, api_key=, apikey=, access_token= … argument (also --password=…, "password": "…")',
    `(?<![A-Za-z0-9_-])(?:--?${FLAG_PREFIX})?(?:${ARG_NAMES})["']?\\s{0,2}[=:]\\s{0,2}(${VALUE})`,
    { group: 1 },
  ),
]);

/** The regex each pattern runs with: global (to scan), with indices when a group is wanted. */
const runners = new WeakMap<SecretPattern, RegExp>();

function runnerOf(p: SecretPattern): RegExp {
  let re = runners.get(p);
  if (re === undefined) {
    const want = `${p.regex.global ? '' : 'g'}${p.group !== undefined && !p.regex.hasIndices ? 'd' : ''}`;
    re = want === '' ? p.regex : new RegExp(p.regex.source, p.regex.flags.replace('y', '') + want);
    runners.set(p, re);
  }
  return re;
}

interface Span {
  start: number;
  end: number;
  /** Index in the pattern list: lower wins the name when spans overlap. */
  rank: number;
}

function collect(text: string, p: SecretPattern, rank: number, into: Span[]): void {
  const re = runnerOf(p);
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[0].length === 0) {
      // A user pattern that can match nothing would otherwise spin here forever.
      re.lastIndex++;
      continue;
    }
    let start = m.index;
    let end = start + m[0].length;
    // A group that took no part in the match: redact the whole match rather than nothing.
    const g = p.group !== undefined ? m.indices?.[p.group] : undefined;
    if (g !== undefined && g[1] > g[0]) [start, end] = g;
    into.push({ start, end, rank });
  }
  re.lastIndex = 0;
}

/**
 * Text that was redacted before (a second pass, a command that quotes a stored one) is left as
 * it is: a find that lies inside a marker (`github-token]` read as a URL password) is dropped.
 */
function dropInsideMarkers(text: string, spans: Span[]): void {
  // Both lists are in text order and markers never overlap: one pass over each.
  const markers = [...text.matchAll(/\[REDACTED:[a-z0-9-]{1,64}\]/g)].map(
    (m) => [m.index, m.index + m[0].length] as const,
  );
  let kept = 0;
  let k = 0;
  for (const s of spans) {
    while (k < markers.length && (markers[k] as readonly [number, number])[1] <= s.start) k++;
    const m = markers[k];
    if (m === undefined || s.start < m[0] || s.end > m[1]) spans[kept++] = s;
  }
  spans.length = kept;
}

/**
 * Replaces every secret in `text` by `[REDACTED:<pattern name>]` (the built-in patterns, then `extra`).
 * @example
 * redactSecrets('mysql -u root -phunter2 db').text; // 'mysql -u root -p[REDACTED:mysql-password] db'
 */
export function redactSecrets(text: string, extra: readonly SecretPattern[] = []): Redaction {
  const patterns = extra.length === 0 ? SECRET_PATTERNS : [...SECRET_PATTERNS, ...extra];
  const spans: Span[] = [];
  for (let rank = 0; rank < patterns.length; rank++)
    collect(text, patterns[rank] as SecretPattern, rank, spans);
  spans.sort((a, b) => a.start - b.start || a.rank - b.rank);
  if (spans.length > 0 && text.includes('[REDACTED:')) dropInsideMarkers(text, spans);
  if (spans.length === 0) return { text, redacted: 0, kinds: [] };
  // Overlapping finds are merged, never trimmed: whatever any pattern took for a secret is gone.
  let out = '';
  let pos = 0;
  let redacted = 0;
  const kinds = new Set<string>();
  for (let i = 0; i < spans.length; ) {
    const first = spans[i] as Span;
    let end = first.end;
    let rank = first.rank;
    for (i++; i < spans.length && (spans[i] as Span).start < end; i++) {
      const s = spans[i] as Span;
      end = Math.max(end, s.end);
      rank = Math.min(rank, s.rank);
    }
    const name = (patterns[rank] as SecretPattern).name;
    out += `${text.slice(pos, first.start)}[REDACTED:${name}]`;
    pos = end;
    redacted++;
    kinds.add(name);
  }
  return { text: out + text.slice(pos), redacted, kinds: [...kinds] };
}

/** Where the config gives user patterns. */
const KEY = 'observe.secret_patterns';

/**
 * Compiles user secret patterns from the config (`[[observe.secret_patterns]] name, pattern`).
 * @example
 * compileSecretPatterns([{ name: 'acme-key', pattern: 'acme_[a-z0-9]{32}' }]);
 */
export function compileSecretPatterns(
  specs: ReadonlyArray<{ name: string; pattern: string }>,
): SecretPattern[] {
  return specs.map((spec, i) => {
    const name: unknown = spec?.name;
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw new ConfigError(
        `config key ${KEY}: pattern #${i + 1}: name ${JSON.stringify(name)} must be kebab-case (a-z, 0-9 and -): it is stored in [REDACTED:<name>]`,
        { key: KEY, pattern: typeof name === 'string' ? name : i + 1 },
      );
    }
    const source: unknown = spec.pattern;
    if (typeof source !== 'string' || source === '') {
      throw new ConfigError(
        `config key ${KEY}: pattern '${name}': pattern must be a non-empty regular expression`,
        {
          key: KEY,
          pattern: name,
        },
      );
    }
    let regex: RegExp;
    try {
      regex = new RegExp(source, 'g');
    } catch (err) {
      throw new ConfigError(
        `config key ${KEY}: pattern '${name}': ${JSON.stringify(source)} is not a regular expression: ${(err as Error).message}`,
        {
          key: KEY,
          pattern: name,
        },
      );
    }
    return { name, description: `user pattern '${name}'`, regex };
  });
}
