import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../../src/errors/index.js';
import {
  compileSecretPatterns,
  redactSecrets,
  SECRET_PATTERNS,
  type SecretPattern,
} from '../../src/privacy/secrets.js';

// Secret-shaped strings are built at run time, so no literal token sits in the source for a
// secret scanner (or a push protection) to trip over.
const ALNUM = 'aB3dE5gH7jK9mN1pQ2rS4tU6vW8xY0zC';
const UPPER = 'QWERTYUIOPASDFGHJKLZXCVBNM234567';
const HEX = '0123456789abcdef';
/** `n` characters cycled from `chars`, starting at `from` so two calls give different strings. */
function make(chars: string, n: number, from = 0): string {
  let s = '';
  for (let i = 0; i < n; i++) s += chars[(from + i * 7) % chars.length];
  return s;
}
const b64 = (n: number) => make(`${ALNUM}+/`, n, 3);

interface Positive {
  kind: string;
  input: string;
  /** Text that must be gone from the output. */
  secret: string;
}
interface Negative {
  /** The pattern this look-alike is close to. */
  kind: string;
  input: string;
}

const pemBody = `MIIEow${b64(64)}\n${b64(64)}\n${b64(20)}==`;
const gcpBody = `MIIEvQ${b64(60)}`;
const aws40 = make(`${ALNUM}/+`, 40, 5);
const jwt = `eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.${make(ALNUM, 43, 1)}`;

const POSITIVES: readonly Positive[] = [
  {
    kind: 'gcp-service-account-key',
    input: `{"type": "service_account", "private_key_id": "abc", "private_key": "-----BEGIN PRIVATE KEY-----\\n${gcpBody}\\n-----END PRIVATE KEY-----\\n", "client_email": "x@y.iam.gserviceaccount.com"}`,
    secret: gcpBody,
  },
  {
    kind: 'pem-private-key',
    input: `cat > id_rsa <<EOF\n-----BEGIN RSA PRIVATE KEY-----\n${pemBody}\n-----END RSA PRIVATE KEY-----\nEOF`,
    secret: pemBody.slice(0, 40),
  },
  {
    kind: 'pem-private-key',
    input: `echo "-----BEGIN OPENSSH PRIVATE KEY-----\\n${b64(70)}" | ssh-add -`,
    secret: b64(70),
  },
  {
    kind: 'aws-access-key-id',
    input: `export AWS_ACCESS_KEY_ID=AKIA${make(UPPER, 16)}`,
    secret: `AKIA${make(UPPER, 16)}`,
  },
  {
    kind: 'aws-access-key-id',
    input: `aws sts ... ASIA${make(UPPER, 16, 2)} more`,
    secret: `ASIA${make(UPPER, 16, 2)}`,
  },
  { kind: 'aws-secret-access-key', input: `aws configure set aws_secret_access_key ${aws40}`, secret: aws40 },
  { kind: 'aws-secret-access-key', input: `AWS_SECRET_ACCESS_KEY=${aws40} terraform plan`, secret: aws40 },
  {
    kind: 'gcp-api-key',
    input: `curl "https://maps.googleapis.com/x?key=AIza${make(ALNUM, 35)}"`,
    secret: `AIza${make(ALNUM, 35)}`,
  },
  {
    kind: 'github-token',
    input: `git clone https://ghp_${make(ALNUM, 36)}@github.com/o/r`,
    secret: make(ALNUM, 36),
  },
  {
    kind: 'github-token',
    input: `gh auth login --with-token gho_${make(ALNUM, 36, 4)}`,
    secret: make(ALNUM, 36, 4),
  },
  { kind: 'github-token', input: `echo ghs_${make(ALNUM, 36, 9)}`, secret: make(ALNUM, 36, 9) },
  {
    kind: 'github-pat',
    input: `export GH=github_pat_${make(ALNUM, 22)}_${make(ALNUM, 59, 6)}`,
    secret: make(ALNUM, 59, 6),
  },
  {
    kind: 'gitlab-token',
    input: `curl --header "PRIVATE: glpat-${make(ALNUM, 20)}"`,
    secret: make(ALNUM, 20),
  },
  {
    kind: 'slack-webhook',
    input: `curl -X POST https://hooks.slack.com/services/T${make(UPPER, 8)}/B${make(UPPER, 8, 1)}/${make(ALNUM, 24)} -d '{}'`,
    secret: make(ALNUM, 24),
  },
  {
    kind: 'slack-token',
    input: `SLACK=xoxb-${make(HEX, 11)}-${make(HEX, 12, 1)}-${make(ALNUM, 24)}`,
    secret: make(ALNUM, 24),
  },
  {
    kind: 'slack-token',
    input: `slack-cli xoxp-${make(HEX, 10)}-${make(HEX, 10, 2)}-${make(ALNUM, 20, 2)}`,
    secret: make(ALNUM, 20, 2),
  },
  { kind: 'stripe-key', input: `stripe --api-key sk_live_${make(ALNUM, 24)}`, secret: make(ALNUM, 24) },
  {
    kind: 'stripe-key',
    input: `echo rk_live_${make(ALNUM, 24, 3)} pk_live_${make(ALNUM, 24, 5)}`,
    secret: make(ALNUM, 24, 5),
  },
  { kind: 'stripe-key', input: `stripe listen sk_test_${make(ALNUM, 30, 1)}`, secret: make(ALNUM, 30, 1) },
  {
    kind: 'anthropic-key',
    input: `claude --key sk-ant-api03-${make(ALNUM, 80)}-${make(ALNUM, 6)}AA`,
    secret: make(ALNUM, 80),
  },
  {
    kind: 'openai-key',
    input: `openai api sk-proj-${make(`${ALNUM}_-`, 100)}`,
    secret: make(`${ALNUM}_-`, 100),
  },
  { kind: 'openai-key', input: `echo sk-${make(ALNUM, 48)} | pbcopy`, secret: make(ALNUM, 48) },
  {
    kind: 'sendgrid-key',
    input: `echo SG.${make(ALNUM, 22)}.${make(ALNUM, 43, 3)}`,
    secret: make(ALNUM, 43, 3),
  },
  { kind: 'twilio-api-key', input: `twilio login SK${make(HEX, 32)}`, secret: make(HEX, 32) },
  {
    kind: 'npm-token',
    input: `echo //registry.npmjs.org/:_authToken=npm_${make(ALNUM, 36)} >> .npmrc`,
    secret: make(ALNUM, 36),
  },
  {
    kind: 'pypi-token',
    input: `twine upload -p pypi-AgEIcHlwaS5vcmc${make(ALNUM, 60)} dist/*`,
    secret: make(ALNUM, 60),
  },
  { kind: 'digitalocean-token', input: `doctl auth init -t dop_v1_${make(HEX, 64)}`, secret: make(HEX, 64) },
  {
    kind: 'huggingface-token',
    input: `huggingface-cli login hf_${make(ALNUM, 34)}`,
    secret: make(ALNUM, 34),
  },
  {
    kind: 'azure-storage-key',
    input: `az storage blob list --connection-string "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${b64(86)}==;EndpointSuffix=core.windows.net"`,
    secret: b64(86),
  },
  { kind: 'jwt', input: `echo ${jwt} | jwt decode -`, secret: jwt.split('.')[2] as string },
  {
    kind: 'authorization-bearer',
    input: `curl -H "Authorization: Bearer ${make(ALNUM, 30)}" https://api.example.com`,
    secret: make(ALNUM, 30),
  },
  {
    kind: 'authorization-bearer',
    input: `http get x 'authorization:bearer ${make(ALNUM, 12, 4)}'`,
    secret: make(ALNUM, 12, 4),
  },
  {
    kind: 'authorization-basic',
    input: `curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA==' https://x`,
    secret: 'dXNlcjpwYXNzd29yZA',
  },
  {
    kind: 'api-key-header',
    input: `curl -H "X-API-Key: ${make(ALNUM, 20)}" https://api.example.com`,
    secret: make(ALNUM, 20),
  },
  {
    kind: 'url-credentials',
    input: 'git clone https://alice:s3cr3t-pass@git.example.com/repo.git',
    secret: 's3cr3t-pass',
  },
  {
    kind: 'url-credentials',
    input: 'psql postgres://app:p@ss:w0rd@db.internal:5432/prod',
    secret: 'p@ss:w0rd',
  },
  {
    kind: 'curl-user-password',
    input: 'curl -s -u alice:wonderland https://api.example.com',
    secret: 'wonderland',
  },
  { kind: 'mysql-password', input: 'mysql -h db -u root -phunter2 mydb', secret: 'hunter2' },
  { kind: 'mysql-password', input: `mysqldump -uroot -p'my pass' db > d.sql`, secret: 'my pass' },
  {
    kind: 'login-password-flag',
    input: 'docker login -u bob -p s3cretpw registry.example.com',
    secret: 's3cretpw',
  },
  { kind: 'login-password-flag', input: 'sshpass -p letmein ssh pi@raspberry', secret: 'letmein' },
  {
    kind: 'secret-env-assignment',
    input: `export DB_PASSWORD='correct horse battery'`,
    secret: 'correct horse battery',
  },
  { kind: 'secret-env-assignment', input: 'OPENAI_API_KEY=abc123xyz npm start', secret: 'abc123xyz' },
  { kind: 'secret-env-assignment', input: 'export MY_APP_TOKEN=tok3n-value', secret: 'tok3n-value' },
  { kind: 'secret-env-assignment', input: 'JWT_SECRET="s3cr3t" node app.js', secret: 's3cr3t' },
  { kind: 'secret-flag', input: 'vault login --token s.Abcdef123456', secret: 's.Abcdef123456' },
  { kind: 'secret-flag', input: 'wget --http-password pa55word https://x', secret: 'pa55word' },
  { kind: 'secret-flag', input: 'gpg --batch --passphrase "my pass phrase" -d f.gpg', secret: 'my pass phrase' },
  { kind: 'password-arg', input: 'wget --proxy-password=pa55word https://x', secret: 'pa55word' },
  { kind: 'secret-env-assignment', input: 'PGPASSWORD=pa55word psql -h db', secret: 'pa55word' },
  { kind: 'secret-env-assignment', input: 'heroku config:set SECRET_KEY_BASE=0a1b2c3d4e', secret: '0a1b2c3d4e' },
  { kind: 'secret-env-assignment', input: 'REDISCLI_AUTH=pa55word redis-cli ping', secret: 'pa55word' },
  { kind: 'url-credentials', input: 'redis-cli -u redis://:pa55word@localhost:6379', secret: 'pa55word' },
  { kind: 'authorization-bearer', input: 'http POST api.example.com Authorization:"Bearer tok3nValue99"', secret: 'tok3nValue99' },
  { kind: 'authorization-bearer', input: `curl -H 'Authorization: token tok3nValue99' https://api.github.com`, secret: 'tok3nValue99' },
  { kind: 'login-password-flag', input: 'az login -u bob@example.com -p pa55word', secret: 'pa55word' },
  { kind: 'cli-password-flag', input: 'redis-cli -h db -a pa55word ping', secret: 'pa55word' },
  { kind: 'cli-password-flag', input: 'redis-cli --user app --pass pa55word', secret: 'pa55word' },
  { kind: 'cli-password-flag', input: 'ldapsearch -x -D cn=admin,dc=x -w pa55word', secret: 'pa55word' },
  { kind: 'cli-password-flag', input: 'zip -P pa55word out.zip f', secret: 'pa55word' },
  { kind: 'cli-password-flag', input: 'unzip -P pa55word out.zip', secret: 'pa55word' },
  { kind: 'cli-password-flag', input: 'ssh-keygen -t ed25519 -N pa55word -f key', secret: 'pa55word' },
  { kind: 'cli-password-flag', input: 'openssl enc -aes-256-cbc -k pa55word -in f', secret: 'pa55word' },
  { kind: 'openssl-pass-arg', input: 'openssl pkcs12 -export -passout pass:pa55word -out a.p12', secret: 'pa55word' },
  { kind: 'archive-password', input: '7z a -ppa55word a.7z f', secret: 'pa55word' },
  { kind: 'smb-user-password', input: 'smbclient //host/share -U bob%pa55word', secret: 'pa55word' },
  { kind: 'positional-password', input: 'htpasswd -b .htpasswd bob pa55word', secret: 'pa55word' },
  { kind: 'positional-password', input: 'htpasswd -nbB bob pa55word | tee x', secret: 'pa55word' },
  { kind: 'positional-password', input: 'cf auth bob@example.com pa55word', secret: 'pa55word' },
  { kind: 'echoed-password', input: 'echo pa55word | docker login -u bob --password-stdin', secret: 'pa55word' },
  { kind: 'echoed-password', input: `printf 'pa55 word' | helm registry login r --password-stdin`, secret: 'pa55 word' },
  { kind: 'vault-token', input: `vault login hvs.${make(ALNUM, 30)}`, secret: `hvs.${make(ALNUM, 30)}` },
  { kind: 'vault-token', input: `vault login s.${make(ALNUM, 24)}`, secret: `s.${make(ALNUM, 24)}` },
  { kind: 'secret-variable-set', input: 'set -gx DB_PASSWORD pa55word', secret: 'pa55word' },
  { kind: 'secret-variable-set', input: 'setenv GITHUB_TOKEN pa55word', secret: 'pa55word' },
  { kind: 'secret-variable-set', input: 'gh secret set API_TOKEN --repo o/r --body pa55word', secret: 'pa55word' },
  { kind: 'cli-password-flag', input: 'git config --global user.password pa55word', secret: 'pa55word' },
  { kind: 'echoed-password', input: 'echo pa55word | sudo -S apt update', secret: 'pa55word' },
  { kind: 'here-string-password', input: 'sudo -S apt update <<< pa55word', secret: 'pa55word' },
  { kind: 'here-string-password', input: 'docker login -u bob --password-stdin <<< "pa55 word"', secret: 'pa55 word' },
  { kind: 'secret-flag', input: 'mycli --password "two words" --host db', secret: 'two words' },
  { kind: 'password-arg', input: 'password=hunter2', secret: 'hunter2' },
  {
    kind: 'password-arg',
    input: 'curl "https://api.example.com/v1?api_key=abc123&limit=5"',
    secret: 'abc123',
  },
  { kind: 'password-arg', input: 'deploy --token=t0k3n --env prod', secret: 't0k3n' },
  { kind: 'password-arg', input: `echo '{"password": "hunter2"}' > creds.json`, secret: 'hunter2' },
  {
    kind: 'password-arg',
    input: 'app passwd=pw1 pwd=pw2 secret=pw3 apikey=pw4 access_token=pw5',
    secret: 'pw5',
  },
];

const NEGATIVES: readonly Negative[] = [
  {
    kind: 'gcp-service-account-key',
    input: '{"private_key_id": "0123abcd", "private_key": "<paste the key here>"}',
  },
  {
    kind: 'pem-private-key',
    input: `echo "-----BEGIN PUBLIC KEY-----\n${b64(64)}\n-----END PUBLIC KEY-----"`,
  },
  { kind: 'pem-private-key', input: 'grep -l "BEGIN PRIVATE KEY" ~/.ssh/*' },
  { kind: 'aws-access-key-id', input: `echo AKIA${make(UPPER, 10)}` },
  { kind: 'aws-access-key-id', input: `echo AKIA${make(UPPER, 17)}` },
  { kind: 'aws-secret-access-key', input: 'echo "set aws_secret_access_key in ~/.aws/credentials"' },
  { kind: 'gcp-api-key', input: `echo AIza${make(ALNUM, 20)}` },
  { kind: 'github-token', input: 'git checkout ghp_short123' },
  { kind: 'github-pat', input: 'echo github_pat_abc' },
  { kind: 'gitlab-token', input: 'echo glpat-short' },
  { kind: 'slack-webhook', input: 'open https://api.slack.com/messaging/webhooks' },
  { kind: 'slack-token', input: 'echo xoxb-test' },
  { kind: 'stripe-key', input: `stripe listen pk_test_${make(ALNUM, 24)}` },
  { kind: 'stripe-key', input: 'echo sk_live_short' },
  { kind: 'anthropic-key', input: 'echo sk-ant-short' },
  { kind: 'openai-key', input: 'git checkout sk-feature-add-login-page-and-more-things' },
  { kind: 'sendgrid-key', input: 'echo SG.short.x' },
  { kind: 'twilio-api-key', input: `echo SK${make(HEX, 31)}` },
  { kind: 'npm-token', input: 'npm_config_registry=https://registry.npmjs.org/ npm ci' },
  { kind: 'pypi-token', input: 'pip install pypi-simple' },
  { kind: 'digitalocean-token', input: `echo dop_v1_${make(HEX, 10)}` },
  { kind: 'huggingface-token', input: 'python -c "from huggingface_hub import hf_hub_download"' },
  { kind: 'azure-storage-key', input: 'az storage account keys list  # AccountKey=<your-key>' },
  { kind: 'jwt', input: 'echo eyJhbGciOiJIUzI1NiJ9 | base64 -d' },
  { kind: 'authorization-bearer', input: 'curl -H "Authorization: Bearer $TOKEN" https://api.example.com' },
  { kind: 'authorization-basic', input: 'curl -H "Authorization: Basic $' + '{CREDS}" https://x' },
  { kind: 'api-key-header', input: 'curl -H "X-API-Key: $API_KEY" https://api.example.com' },
  { kind: 'url-credentials', input: 'curl https://example.com/path?x=1&y=2' },
  {
    kind: 'url-credentials',
    input: 'git clone ssh://git@github.com/org/repo.git && curl http://localhost:3000/api',
  },
  {
    kind: 'curl-user-password',
    input: 'curl -u alice https://api.example.com && docker run -u 1000:1000 alpine',
  },
  { kind: 'mysql-password', input: 'mysql -u root -p mydb' },
  { kind: 'mysql-password', input: 'mysql -h db -P 3306 -u app' },
  {
    kind: 'login-password-flag',
    input: 'docker login -u bob --password-stdin && docker run -p 8080:80 nginx',
  },
  { kind: 'secret-env-assignment', input: 'export GITHUB_TOKEN=$(gh auth token)' },
  { kind: 'secret-env-assignment', input: 'export TOKEN_FILE=~/.config/token; echo $DB_PASSWORD' },
  { kind: 'secret-flag', input: 'mycli --password --verbose' },
  { kind: 'secret-flag', input: 'mycli --token-file ~/.token' },
  { kind: 'password-arg', input: 'git commit -m "token budget"' },
  { kind: 'password-arg', input: 'passwd alice; echo password; pwd' },
  { kind: 'password-arg', input: 'PWD=/tmp make && echo password=' },
  { kind: 'password-arg', input: 'mycli --password=$DB_PASS' },
  { kind: 'secret-flag', input: 'pg_dump --no-password mydb > dump.sql' },
  { kind: 'secret-flag', input: 'wget --http-user=bob --ask-password https://x' },
  { kind: 'secret-flag', input: 'gpg --passphrase-file pw.txt -d f.gpg' },
  { kind: 'secret-env-assignment', input: 'export PASSWORD_FILE=~/.pw MAX_TOKENS=5 KEYBASE=1' },
  { kind: 'authorization-bearer', input: `http api.example.com Authorization:"Bearer $TOKEN"` },
  { kind: 'login-password-flag', input: 'az login && cf login -a api.example.com' },
  { kind: 'cli-password-flag', input: 'redis-cli -h localhost -p 6379 ping; redis-cli --pass' },
  { kind: 'cli-password-flag', input: 'ldapsearch -x -W -D cn=admin && zip -r out.zip dir && unzip -l out.zip' },
  { kind: 'cli-password-flag', input: 'ssh-keygen -t ed25519 -f key && openssl req -new -key k.pem' },
  { kind: 'openssl-pass-arg', input: 'openssl rsa -in k.pem -passin env:PASS -passout file:pw.txt' },
  { kind: 'archive-password', input: '7z x a.7z && 7z a -p a.7z f' },
  { kind: 'smb-user-password', input: 'smbclient -L host -U bob' },
  { kind: 'positional-password', input: 'htpasswd -c .htpasswd bob; htpasswd -B .htpasswd bob; cf auth' },
  { kind: 'echoed-password', input: 'echo "$PASS" | docker login --password-stdin; echo hi | grep h' },
  { kind: 'vault-token', input: 'vault status && ls -la s.txt' },
  { kind: 'secret-variable-set', input: 'set -x PATH /usr/bin $PATH; set -e DB_PASSWORD; set fish_greeting hi; gh secret set X < f' },
  { kind: 'here-string-password', input: 'sudo -u bob cat <<< hello; sudo -s; echo hi | sudo tee f' },
];

test('there are at least 24 built-in patterns, with stable kebab-case names, global regexes and descriptions', () => {
  assert.ok(SECRET_PATTERNS.length >= 24, `${SECRET_PATTERNS.length} patterns`);
  const names = SECRET_PATTERNS.map((p) => p.name);
  assert.equal(new Set(names).size, names.length, 'names are unique');
  for (const p of SECRET_PATTERNS) {
    assert.match(p.name, /^[a-z0-9]+(?:-[a-z0-9]+)*$/, p.name);
    assert.ok(p.regex.global, `${p.name} is global`);
    assert.ok(p.description.length > 0, `${p.name} has a description`);
  }
  assert.ok(Object.isFrozen(SECRET_PATTERNS));
});

test('every built-in pattern has a positive case and a negative look-alike in the tables', () => {
  const known = new Set(SECRET_PATTERNS.map((p) => p.name));
  for (const c of [...POSITIVES, ...NEGATIVES])
    assert.ok(known.has(c.kind), `table names an unknown pattern: ${c.kind}`);
  for (const name of known) {
    assert.ok(
      POSITIVES.some((c) => c.kind === name),
      `pattern ${name} has no positive case`,
    );
    assert.ok(
      NEGATIVES.some((c) => c.kind === name),
      `pattern ${name} has no negative look-alike`,
    );
  }
});

for (const c of POSITIVES) {
  test(`redacts ${c.kind}: ${c.input.slice(0, 60).replace(/\n/g, '\\n')}`, () => {
    assert.ok(c.input.includes(c.secret), 'the case carries its secret');
    const r = redactSecrets(c.input);
    assert.ok(!r.text.includes(c.secret), `secret still present in ${JSON.stringify(r.text)}`);
    assert.ok(
      r.text.includes(`[REDACTED:${c.kind}]`),
      `no [REDACTED:${c.kind}] in ${JSON.stringify(r.text)}`,
    );
    assert.ok(r.kinds.includes(c.kind), `kinds ${JSON.stringify(r.kinds)}`);
    assert.ok(r.redacted >= 1);
    assert.equal(r.text.match(/\[REDACTED:/g)?.length, r.redacted, 'the count is the number of markers');
    assert.deepEqual(
      redactSecrets(r.text),
      { text: r.text, redacted: 0, kinds: [] },
      'redacting twice changes nothing',
    );
  });
}

for (const c of NEGATIVES) {
  test(`leaves a ${c.kind} look-alike alone: ${c.input.slice(0, 60).replace(/\n/g, '\\n')}`, () => {
    assert.deepEqual(redactSecrets(c.input), { text: c.input, redacted: 0, kinds: [] });
  });
}

test('only the secret part is replaced when the pattern names a group', () => {
  assert.equal(redactSecrets('password=hunter2').text, 'password=[REDACTED:password-arg]');
  assert.equal(redactSecrets('app --password hunter2 -v').text, 'app --password [REDACTED:secret-flag] -v');
  assert.equal(
    redactSecrets('mysql -u root -phunter2 db').text,
    'mysql -u root -p[REDACTED:mysql-password] db',
  );
  assert.equal(
    redactSecrets('psql postgres://admin:s3cret@db:5432/app').text,
    'psql postgres://admin:[REDACTED:url-credentials]@db:5432/app',
  );
  assert.equal(
    redactSecrets('curl -H "Authorization: Bearer abcdef123456" x').text,
    'curl -H "Authorization: Bearer [REDACTED:authorization-bearer]" x',
  );
  assert.equal(
    redactSecrets(`export DB_PASSWORD="a b"; make`).text,
    'export DB_PASSWORD=[REDACTED:secret-env-assignment]; make',
  );
});

test('a PEM block is one redaction, and its END line goes with it', () => {
  const r = redactSecrets(
    `-----BEGIN EC PRIVATE KEY-----\n${pemBody}\n-----END EC PRIVATE KEY-----\necho done`,
  );
  assert.deepEqual(r, {
    text: '[REDACTED:pem-private-key]\necho done',
    redacted: 1,
    kinds: ['pem-private-key'],
  });
});

test('overlapping finds are merged into one marker named after the more specific pattern', () => {
  const token = `ghp_${make(ALNUM, 36)}`;
  // github-token, secret-env-assignment and password-arg all see this value.
  assert.deepEqual(redactSecrets(`export GITHUB_TOKEN=${token}`), {
    text: 'export GITHUB_TOKEN=[REDACTED:github-token]',
    redacted: 1,
    kinds: ['github-token'],
  });
  assert.deepEqual(redactSecrets(`token=${token}`).text, 'token=[REDACTED:github-token]');
});

test('several secrets in one line: each is counted, kinds are distinct and in text order', () => {
  const line = `mysql -pone && curl -u me:two x && PASSWORD=three app && mysql -pfour`;
  const r = redactSecrets(line);
  assert.equal(r.redacted, 4);
  assert.deepEqual(r.kinds, ['mysql-password', 'curl-user-password', 'password-arg']);
  for (const s of ['one', 'two', 'three', 'four']) assert.ok(!r.text.includes(s), s);
});

test('text without secrets comes back as it is', () => {
  for (const s of ['', 'ls -la', 'git status', 'npm run build -- --watch', 'cd ~/src/weft && make test']) {
    assert.deepEqual(redactSecrets(s), { text: s, redacted: 0, kinds: [] });
  }
});

test('extra patterns from the config run after the built-in ones', () => {
  const extra = compileSecretPatterns([
    { name: 'acme-key', pattern: 'acme_[a-z0-9]{12}' },
    { name: 'internal-host', pattern: 'db\\d+\\.corp\\.example' },
  ]);
  assert.equal(extra.length, 2);
  assert.ok(extra.every((p) => p.regex.global));
  const r = redactSecrets('deploy acme_abcdef123456 to db7.corp.example with password=x', extra);
  assert.equal(
    r.text,
    'deploy [REDACTED:acme-key] to [REDACTED:internal-host] with password=[REDACTED:password-arg]',
  );
  assert.deepEqual(r.kinds, ['acme-key', 'internal-host', 'password-arg']);
  assert.equal(
    redactSecrets('deploy acme_abcdef123456').redacted,
    0,
    'without the extra patterns nothing fires',
  );
});

test('an extra pattern that is not global, uses a group, or can match nothing still works', () => {
  const notGlobal: SecretPattern = { name: 'code', description: 'a code', regex: /code-(\d{4})/, group: 1 };
  assert.equal(
    redactSecrets('code-1234 and code-5678', [notGlobal]).text,
    'code-[REDACTED:code] and code-[REDACTED:code]',
  );
  const [empty] = compileSecretPatterns([{ name: 'maybe-x', pattern: 'x*' }]);
  assert.equal(redactSecrets('a xx b', [empty as SecretPattern]).text, 'a [REDACTED:maybe-x] b');
});

test('compileSecretPatterns refuses a bad regex, a bad name or an empty pattern with a ConfigError naming the pattern', () => {
  assert.throws(
    () =>
      compileSecretPatterns([
        { name: 'ok-one', pattern: 'a+' },
        { name: 'broken-one', pattern: 'a(b' },
      ]),
    (err: unknown) =>
      err instanceof ConfigError && err.code === 'WEFT_CONFIG' && err.message.includes("'broken-one'"),
  );
  assert.throws(
    () => compileSecretPatterns([{ name: 'Not Kebab', pattern: 'x' }]),
    (err: unknown) => err instanceof ConfigError && err.message.includes('Not Kebab'),
  );
  assert.throws(
    () => compileSecretPatterns([{ name: 'empty-one', pattern: '' }]),
    (err: unknown) => err instanceof ConfigError && err.message.includes("'empty-one'"),
  );
  assert.deepEqual(compileSecretPatterns([]), []);
});

test('200 KB hostile inputs are processed', () => {
  const N = 200 * 1024;
  const fill = (unit: string) => unit.repeat(Math.ceil(N / unit.length)).slice(0, N);
  const hostile = [
    fill('a='),
    fill('-----BEGIN '),
    fill('-----BEGIN RSA PRIVATE KEY-----'),
    `-----BEGIN PRIVATE KEY-----${fill('QUJDREVGR0hJSktMTU5PUFFSU1RVVldY+/')}`,
    fill('QUJDREVGR0hJSktMTU5PUFFSU1RVVldY+/='),
    fill('eyJa.'),
    fill('password="'),
    fill('x://u:p'),
    fill('mysql -p'),
    fill('curl -u '),
    fill('A_'),
    fill('AKIA'),
    fill('Authorization: Bearer '),
    fill('"private_key": "-----BEGIN'),
    fill('redis-cli '),
    fill('htpasswd -b '),
    fill('htpasswd -b x'),
    fill('echo x '),
    fill('smbclient -U '),
    fill('--a-b-c-'),
    fill('s.'),
    fill('-passin pass:'),
    fill('7z -p'),
    fill('set -x A_TOKEN '),
    fill('gh secret set x -a '),
    fill('sudo -S '),
    fill('sudo -S <<<'),
    fill('git config a.password '),
  ];
  for (const h of hostile) {
    const r = redactSecrets(h);
    assert.equal(typeof r.text, 'string');
    assert.ok(r.redacted >= 0);
  }
});
