import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMMAND_CATEGORY_VALUES, RISK_LEVEL_VALUES } from '../../src/catalog/index.js';
import { ConfigError } from '../../src/errors/index.js';
import {
  type ClassifyRuleSpec,
  COMMAND_CATEGORIES,
  type CommandCategory,
  classifyCommand,
  commandPattern,
  compileRules,
  DEFAULT_RULES,
  RISK_LEVELS,
  type RiskLevel,
} from '../../src/privacy/classify.js';

/** The shell's `${HOME}`, spelled so that it is not read as a template placeholder. */
const BRACED_HOME = '$' + '{HOME}';

/** [command, category, risk] */
type Case = readonly [string, CommandCategory, RiskLevel];

const CASES: readonly Case[] = [
  // git
  ['git status', 'git', 'safe'],
  ['git commit -m "rm -rf / is a bad idea"', 'git', 'safe'],
  ['gh pr list --author @me', 'git', 'safe'],
  ['tig', 'git', 'safe'],
  ['git push origin main', 'git', 'moderate'],
  ['git push --follow-tags', 'git', 'moderate'],
  ['git push --force', 'git', 'high'],
  ['git push -f origin main', 'git', 'high'],
  ['git -C ~/src/app push --force-with-lease', 'git', 'high'],
  ['git push origin +main', 'git', 'high'],
  ['git reset --hard HEAD~1', 'git', 'high'],
  ['git reset --soft HEAD~1', 'git', 'safe'],
  ['git clean -fdx', 'git', 'high'],
  ['git clean -n', 'git', 'safe'],
  ['git checkout drop-table-migration', 'git', 'safe'],
  // docker
  ['docker ps -a', 'docker', 'safe'],
  ['docker run -it --rm -p 8080:80 nginx', 'docker', 'safe'],
  ['docker-compose up -d', 'docker', 'safe'],
  ['podman images', 'docker', 'safe'],
  ['docker rm -f web', 'docker', 'moderate'],
  ['docker rmi nginx:old', 'docker', 'moderate'],
  ['docker system prune -af', 'docker', 'high'],
  ['docker --context prod system prune', 'docker', 'high'],
  // kubernetes
  ['kubectl get pods -n prod', 'kubernetes', 'safe'],
  ['helm install web ./chart', 'kubernetes', 'safe'],
  ['minikube start', 'kubernetes', 'safe'],
  ['kubectl apply -f deploy.yaml', 'kubernetes', 'moderate'],
  ['kubectl delete pod web-1', 'kubernetes', 'high'],
  ['kubectl -n prod delete deployment web', 'kubernetes', 'high'],
  ['kubectl --context staging delete ns old', 'kubernetes', 'high'],
  // npm
  ['npm install', 'npm', 'safe'],
  ['npx tsc --noEmit', 'npm', 'safe'],
  ['yarn build', 'npm', 'safe'],
  ['pnpm test', 'npm', 'safe'],
  ['nohup node server.js &', 'npm', 'safe'],
  ['deno run main.ts', 'npm', 'safe'],
  ['npm publish --access public', 'npm', 'moderate'],
  ['env NODE_ENV=production npm publish', 'npm', 'moderate'],
  // cargo
  ['cargo build --release', 'cargo', 'safe'],
  ['time cargo test', 'cargo', 'safe'],
  ['rustup update stable', 'cargo', 'safe'],
  ['rustc main.rs', 'cargo', 'safe'],
  ['cargo publish', 'cargo', 'moderate'],
  // file_ops
  ['ls -la', 'file_ops', 'safe'],
  ['cat /etc/passwd', 'file_ops', 'safe'],
  ['mkdir -p build/out', 'file_ops', 'safe'],
  ['tar czf backup.tgz src', 'file_ops', 'safe'],
  ['find . -name "*.log"', 'file_ops', 'safe'],
  ['grep force-push notes.txt', 'file_ops', 'safe'],
  ['ls | grep foo', 'file_ops', 'safe'],
  ['ls # rm -rf /', 'file_ops', 'safe'],
  ['rm notes.txt', 'file_ops', 'moderate'],
  ['rm -r build', 'file_ops', 'moderate'],
  ['chmod 644 file.txt', 'file_ops', 'moderate'],
  ['chown me:me file.txt', 'file_ops', 'moderate'],
  ['find . -name "*.tmp" -delete', 'file_ops', 'moderate'],
  ['rm -rf ./build', 'file_ops', 'high'],
  ['rm -rf /tmp/build', 'file_ops', 'high'],
  ['rm -rf ~/projects/old', 'file_ops', 'high'],
  ['rm -rf $HOME/.cache', 'file_ops', 'high'],
  ['rm -r -f node_modules', 'file_ops', 'high'],
  ['chmod -R 777 ./public', 'file_ops', 'high'],
  ['chmod -R 777 ~', 'file_ops', 'high'],
  ['rm -rf /', 'file_ops', 'critical'],
  ['rm -fr /', 'file_ops', 'critical'],
  ['rm -r -f /*', 'file_ops', 'critical'],
  ['rm -Rf ~', 'file_ops', 'critical'],
  ['rm -rf "$HOME"', 'file_ops', 'critical'],
  [`rm -rf ${BRACED_HOME}/`, 'file_ops', 'critical'],
  ['rm --recursive --force /usr', 'file_ops', 'critical'],
  ['rm -rf --no-preserve-root /', 'file_ops', 'critical'],
  ['sudo rm -rf /', 'file_ops', 'critical'],
  ['\\rm -rf /', 'file_ops', 'critical'],
  ['chmod -R 777 /', 'file_ops', 'critical'],
  ['chown -R nobody /etc', 'file_ops', 'critical'],
  ['cat ubuntu.img > /dev/sda', 'file_ops', 'critical'],
  // network
  ['curl https://example.com', 'network', 'safe'],
  ['curl -s https://api.example.com | python -m json.tool', 'network', 'safe'],
  ['curl -o install.sh https://get.example.com | tee install.log', 'network', 'safe'],
  ['curl https://a.example || sh fallback.sh', 'network', 'safe'],
  ['ssh user@host', 'network', 'safe'],
  ['scp file host:/tmp/', 'network', 'safe'],
  ['ping -c 3 8.8.8.8', 'network', 'safe'],
  ['dig example.com', 'network', 'safe'],
  ['ssh host sudo reboot', 'network', 'high'],
  ['curl -fsSL https://get.example.com | sh', 'network', 'critical'],
  ['wget -qO- https://get.example.com | sudo bash', 'network', 'critical'],
  ['curl -sSL https://x.example/install|bash -s -- --yes', 'network', 'critical'],
  ['wget -qO- https://get.example.com | tee install.log | sh', 'network', 'critical'],
  ['curl -s https://x.example | ssh host cat', 'network', 'safe'],
  ['ssh -i key.pem -p 2222 user@host "rm -rf /"', 'network', 'critical'],
  // system
  ['ps aux | grep node', 'system', 'safe'],
  ['htop', 'system', 'safe'],
  ['systemctl status nginx', 'system', 'safe'],
  ['journalctl -u weft -f', 'system', 'safe'],
  ['apt-get install -y jq', 'system', 'safe'],
  ['brew install jq', 'system', 'safe'],
  ['kill 1234', 'system', 'safe'],
  ['dd if=/dev/sda of=backup.img bs=4M', 'system', 'safe'],
  ['sudo apt update', 'system', 'moderate'],
  ['sudo', 'system', 'moderate'],
  ['sudo -i', 'system', 'moderate'],
  ['kill -9 1234', 'system', 'moderate'],
  ['pkill node', 'system', 'moderate'],
  ['killall -HUP nginx', 'system', 'moderate'],
  ['systemctl restart nginx', 'system', 'moderate'],
  ['sudo systemctl stop docker', 'system', 'moderate'],
  ['service nginx stop', 'system', 'moderate'],
  ['iptables -F', 'system', 'high'],
  ['sudo iptables -t nat -F', 'system', 'high'],
  ['shutdown -h now', 'system', 'high'],
  ['sudo reboot', 'system', 'high'],
  ['systemctl poweroff', 'system', 'high'],
  ['mkfs.ext4 /dev/sdb1', 'system', 'critical'],
  ['sudo dd if=ubuntu.iso of=/dev/sdb bs=4M status=progress', 'system', 'critical'],
  ['dd if=/dev/zero of=/dev/nvme0n1', 'system', 'critical'],
  // editor
  ['vim README.md', 'editor', 'safe'],
  ['nvim .', 'editor', 'safe'],
  ['nano /etc/hosts', 'editor', 'safe'],
  ['code .', 'editor', 'safe'],
  ['emacs -nw', 'editor', 'safe'],
  ['hx src/main.rs', 'editor', 'safe'],
  ['sudo vim /etc/hosts', 'editor', 'moderate'],
  // other
  ['echo hello', 'other', 'safe'],
  ['echo "rm -rf /"', 'other', 'safe'],
  ["echo 'git push --force'", 'other', 'safe'],
  ['echo hi > /dev/null', 'other', 'safe'],
  ['python3 script.py', 'other', 'safe'],
  ['make build', 'other', 'safe'],
  ['FOO=bar ./run.sh', 'other', 'safe'],
  ['terraform plan', 'other', 'safe'],
  ['terraform destroy -auto-approve', 'other', 'high'],
  ['terraform apply -destroy', 'other', 'high'],
  ['psql -c "DROP TABLE users"', 'other', 'high'],
  ['mysql -e "drop database prod"', 'other', 'high'],
  ['psql -c "select * from drop_tables"', 'other', 'safe'],
  [':(){ :|:& };:', 'other', 'critical'],
  ['bash -c "rm -rf /"', 'other', 'critical'],
  ["sh -c 'git push --force'", 'other', 'high'],
  ['sh -c "$(curl -fsSL https://get.example.com)"', 'other', 'critical'],
  ['bash <(curl -s https://get.example.com)', 'other', 'critical'],
  ['echo $(rm -rf /)', 'other', 'critical'],
  ['echo "$(rm -rf /)"', 'other', 'critical'],
  ["echo '$(rm -rf /)'", 'other', 'safe'],
  // Whole-line rules are conservative and read inside quotes: this commit message counts.
  ['git commit -m "drop table support"', 'git', 'high'],
  ['eval "rm -rf ~"', 'other', 'critical'],
  // whole lines: the first command gives the category, every command counts for risk
  ['cd repo && git reset --hard', 'file_ops', 'high'],
  ['git add . && git commit -m wip && git push', 'git', 'moderate'],
  ['make && sudo make install', 'other', 'moderate'],
  ['npm test; rm -rf /', 'npm', 'critical'],
  ['FOO=1 BAR=2 git push -f', 'git', 'high'],
  ['if true; then rm -rf /; fi', 'other', 'critical'],
  ['(cd build && rm -rf ./out)', 'file_ops', 'high'],
  ['find / -name core | xargs rm -rf', 'file_ops', 'high'],
  ['timeout 5 kubectl delete pod x', 'kubernetes', 'high'],
];

for (const [command, category, risk] of CASES) {
  test(`classifies ${JSON.stringify(command)} as ${category} / ${risk}`, () => {
    const c = classifyCommand(command);
    assert.deepEqual(
      { category: c.category, riskLevel: c.riskLevel },
      { category, riskLevel: risk },
      `rules: ${c.rules.join(', ')}`,
    );
  });
}

test('the table is big and covers every category and every risk level', () => {
  assert.ok(CASES.length >= 60, `${CASES.length} cases`);
  for (const category of COMMAND_CATEGORIES)
    assert.ok(
      CASES.some((c) => c[1] === category),
      `no case for ${category}`,
    );
  for (const risk of RISK_LEVELS)
    assert.ok(
      CASES.some((c) => c[2] === risk),
      `no case for ${risk}`,
    );
});

test('the category and risk lists match the catalog schema, risks lowest first', () => {
  assert.deepEqual([...COMMAND_CATEGORIES], [...COMMAND_CATEGORY_VALUES]);
  assert.deepEqual([...RISK_LEVELS], [...RISK_LEVEL_VALUES]);
  assert.deepEqual([...RISK_LEVELS], ['safe', 'moderate', 'high', 'critical']);
});

test('every default rule has a unique kebab-case name, a risk, and fires in the table', () => {
  const names = DEFAULT_RULES.map((r) => r.name);
  assert.equal(new Set(names).size, names.length);
  const fired = new Set(CASES.flatMap(([command]) => classifyCommand(command).rules));
  for (const r of DEFAULT_RULES) {
    assert.match(r.name, /^[a-z0-9]+(?:-[a-z0-9]+)*$/);
    assert.ok(r.risk !== undefined, `${r.name} has a risk`);
    assert.ok(fired.has(r.name), `no case in the table fires ${r.name}`);
  }
});

test('rules lists the names of the rules that matched', () => {
  assert.deepEqual(classifyCommand('sudo rm -rf /').rules, [
    'rm-root',
    'rm-recursive-force',
    'sudo',
    'remove-files',
  ]);
  assert.deepEqual(classifyCommand('git push origin main').rules, ['git-push']);
  assert.deepEqual(classifyCommand('ls').rules, []);
});

test('an empty or blank command is other / safe', () => {
  for (const s of ['', '   ', '# only a comment', ';;']) {
    assert.deepEqual(classifyCommand(s), { category: 'other', riskLevel: 'safe', rules: [] });
  }
});

test('a user rule can give a category, and user rules come before the defaults', () => {
  const rules = compileRules([
    { name: 'terraform', pattern: '^(?:terraform|tofu)\\b', category: 'system' },
    { name: 'ls-is-other', pattern: '^ls\\b', category: 'other' },
  ]);
  assert.deepEqual(classifyCommand('terraform plan', rules), {
    category: 'system',
    riskLevel: 'safe',
    rules: ['terraform'],
  });
  const destroy = classifyCommand('terraform destroy', rules);
  assert.equal(destroy.category, 'system');
  assert.equal(destroy.riskLevel, 'high', 'the default risk rule still applies');
  assert.equal(classifyCommand('ls -la', rules).category, 'other');
  assert.equal(classifyCommand('ls -la').category, 'file_ops', 'without the rule: the program decides');
});

test('a user rule can raise the risk, matching anywhere in the line', () => {
  const rules = compileRules([
    { name: 'prod-deploy', pattern: 'deploy\\S*\\s.*--env[= ]prod\\b', risk: 'critical' },
  ]);
  assert.deepEqual(classifyCommand('./deploy.sh --env prod', rules), {
    category: 'other',
    riskLevel: 'critical',
    rules: ['prod-deploy'],
  });
  assert.equal(classifyCommand('./deploy.sh --env staging', rules).riskLevel, 'safe');
  assert.equal(classifyCommand('git pull && ./deploy.sh --env=prod', rules).riskLevel, 'critical');
});

test('a user rule never lowers the risk unless it is final', () => {
  const lower = compileRules([{ name: 'scratch', pattern: '^rm -rf /tmp/scratch$', risk: 'safe' }]);
  assert.equal(classifyCommand('rm -rf /tmp/scratch', lower).riskLevel, 'high');
  const final = compileRules([
    { name: 'scratch', pattern: '^rm -rf /tmp/scratch$', risk: 'safe', final: true },
  ]);
  assert.deepEqual(classifyCommand('rm -rf /tmp/scratch', final), {
    category: 'file_ops',
    riskLevel: 'safe',
    rules: ['scratch'],
  });
  assert.equal(classifyCommand('rm -rf /tmp/scratch2', final).riskLevel, 'high', 'only what it matches');
});

test('a final rule ends the evaluation of the command it matched, not of the others in the line', () => {
  const rules = compileRules([
    { name: 'scratch', pattern: '^rm -rf /tmp/scratch$', risk: 'safe', final: true },
  ]);
  assert.equal(classifyCommand('cd /tmp && rm -rf /tmp/scratch', rules).riskLevel, 'safe');
  assert.equal(classifyCommand('rm -rf /tmp/scratch && rm -rf /', rules).riskLevel, 'critical');
  // sudo is in the command as typed, which the final rule does not match.
  assert.equal(classifyCommand('sudo rm -rf /tmp/scratch', rules).riskLevel, 'moderate');
});

test('a final rule earlier in the list wins over a later user rule', () => {
  const rules = compileRules([
    { name: 'docs-ok', pattern: '^rm -rf docs/_build$', final: true, risk: 'safe' },
    { name: 'any-rm-critical', pattern: '^rm\\b', risk: 'critical' },
  ]);
  assert.equal(classifyCommand('rm -rf docs/_build', rules).riskLevel, 'safe');
  assert.equal(classifyCommand('rm -rf docs', rules).riskLevel, 'critical');
});

test('a user rule given as a global regex is tested from the start every time', () => {
  const rule = { name: 'g', pattern: /prod/g, risk: 'high' as const };
  for (let i = 0; i < 3; i++) assert.equal(classifyCommand('deploy prod', [rule]).riskLevel, 'high');
});

test('compileRules turns config specs into rules', () => {
  const specs: ClassifyRuleSpec[] = [
    { name: 'a', pattern: 'x', category: 'git', risk: 'high', final: false },
    { name: 'b.c_d-e', pattern: 'y' },
  ];
  const [a, b] = compileRules(specs);
  assert.equal(a?.name, 'a');
  assert.ok(a?.pattern instanceof RegExp);
  assert.equal(a?.category, 'git');
  assert.equal(a?.risk, 'high');
  assert.equal(a?.final, false);
  assert.deepEqual(Object.keys(b ?? {}).sort(), ['name', 'pattern']);
  assert.deepEqual(compileRules([]), []);
});

test('compileRules names the rule in a ConfigError for a bad regex, category, risk, final or name', () => {
  const bad: Array<[ClassifyRuleSpec, string]> = [
    [{ name: 'broken-regex', pattern: '(unclosed' }, "'broken-regex'"],
    [{ name: 'bad-category', pattern: 'x', category: 'games' }, "'bad-category'"],
    [{ name: 'bad-risk', pattern: 'x', risk: 'extreme' }, "'bad-risk'"],
    [{ name: 'bad-final', pattern: 'x', final: 'yes' as unknown as boolean }, "'bad-final'"],
    [{ name: 'empty-pattern', pattern: '' }, "'empty-pattern'"],
    [{ name: '', pattern: 'x' }, '#2'],
  ];
  for (const [spec, named] of bad) {
    assert.throws(
      () => compileRules([{ name: 'fine', pattern: 'ok' }, spec]),
      (err: unknown) =>
        err instanceof ConfigError && err.code === 'WEFT_CONFIG' && err.message.includes(named),
      JSON.stringify(spec),
    );
  }
  assert.throws(() => compileRules([{ name: 'bad-category', pattern: 'x', category: 'games' }]), /games/);
  assert.throws(
    () => compileRules([{ name: 'bad-risk', pattern: 'x', risk: 'extreme' }]),
    /safe, moderate, high, critical/,
  );
});

test('commandPattern keeps the program and its subcommand, nothing else', () => {
  const cases: Array<[string, string]> = [
    ['git commit -m "secret message"', 'git commit'],
    ['git -C ~/src/private-repo commit -am "x"', 'git commit'],
    ['git --no-pager log --oneline', 'git log'],
    ['docker run -e PASSWORD=hunter2 nginx', 'docker run'],
    ['docker --context prod ps', 'docker ps'],
    ['kubectl -n secret-namespace get pods', 'kubectl get'],
    ['npm run build', 'npm run'],
    ['cargo +nightly build', 'cargo build'],
    ['sudo apt-get install -y jq', 'apt-get install'],
    ['FOO=secret BAR=x npm test', 'npm test'],
    ['ls -la /home/alice/secret', 'ls'],
    ['rm -rf ./build', 'rm'],
    ['/usr/bin/git status', 'git status'],
    ['./scripts/deploy.sh --env prod', 'deploy.sh'],
    ['python3 manage.py migrate', 'python3'],
    ['cd repo && git push', 'cd'],
    ['git', 'git'],
    ['git /some/path', 'git'],
    ['git Weird-Value', 'git'],
    ['sudo -i', 'sudo'],
    ['FOO=secret', ''],
    ['', ''],
    ['$EDITOR notes.txt', '?'],
  ];
  for (const [command, shape] of cases) assert.equal(commandPattern(command), shape, command);
});

test('commandPattern leaks no argument text', () => {
  const secretWords = ['hunter2', 'secret', 'message', 'alice', 'prod', 'PASSWORD'];
  for (const command of [
    'git commit -m "secret message"',
    'docker run -e PASSWORD=hunter2 nginx',
    'mysql -u alice -phunter2 prod',
    'curl -u alice:hunter2 https://prod.example.com',
    'echo hunter2 | sudo -S -u alice true',
  ]) {
    const shape = commandPattern(command);
    for (const w of secretWords)
      assert.ok(!shape.includes(w), `${JSON.stringify(shape)} from ${JSON.stringify(command)} holds ${w}`);
    assert.ok(shape.split(' ').length <= 2);
  }
  // A pasted token in the program's place is not kept.
  assert.equal(commandPattern(`ghp_${'a1B2'.repeat(9)}`), '?');
});

test('hostile inputs are processed', () => {
  const N = 200 * 1024;
  const fill = (unit: string) => unit.repeat(Math.ceil(N / unit.length)).slice(0, N);
  for (const unit of [
    'a;',
    '|',
    'curl x | ',
    'curl -u ',
    '$(',
    '`',
    '"',
    "'",
    'rm -rf ',
    'git push -f ',
    ':(){ :|',
    'ssh h ',
    'bash -c ',
    '> ',
    '\\',
    ' -n x',
  ]) {
    const c = classifyCommand(fill(unit));
    assert.ok(COMMAND_CATEGORIES.includes(c.category));
    assert.ok(RISK_LEVELS.includes(c.riskLevel));
    assert.equal(typeof commandPattern(fill(unit)), 'string');
  }
});
