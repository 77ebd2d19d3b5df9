/**
 * The command classifier: a category (what kind of tool) and a risk level (how much damage it
 * can do) for a shell command line, from a table of rules users can extend, and a short
 * argument-free shape of the command for counting patterns. Pure: no I/O.
 *
 * What a rule's pattern is tried against (each one a "piece" of the line):
 * - the whole line as typed, comments removed;
 * - each simple command (split at unquoted `|`, `||`, `&&`, `;`, `&`, newlines, parentheses
 *   and backticks), its words joined by one space, quotes undone, a quoted word that holds a
 *   space or a shell operator written back in single quotes: once as typed and once without its
 *   leading `sudo`, `env`, `VAR=x`, `time`, `nohup`, `nice`, `exec`, `command` (and `doas`,
 *   `xargs`, `timeout`, `watch`, shell keywords such as `then`), the program by its name alone
 *   (`/bin/rm` reads `rm`);
 * - each pipeline of two or more commands, those commands joined by ` | `;
 * - the same again for a command line that runs inside this one: the argument of `sh -c`,
 *   `bash -c`, `su -c`, `eval`, what `ssh host …` runs, `$(…)` and backticks.
 * Anchor a pattern with `^` to mean "a command that starts with".
 *
 * Quoted text: a quoted argument is data, not a command, so `echo "rm -rf /"` and
 * `git commit -m "rm -rf /"` are safe — except where a shell runs it (`bash -c "rm -rf /"` is
 * critical). The rules that look at the whole line (`DROP TABLE`, the fork bomb, a write to a
 * raw disk) are conservative and see inside quotes too: `psql -c "DROP TABLE t"` is high, and
 * so is `echo "DROP TABLE t"`. A here-document's body is read as commands (conservative).
 */
import { ConfigError } from '../errors/index.js';
import { redactSecrets } from './secrets.js';

export type CommandCategory =
  | 'git'
  | 'docker'
  | 'kubernetes'
  | 'npm'
  | 'cargo'
  | 'file_ops'
  | 'network'
  | 'system'
  | 'editor'
  | 'other';
export const COMMAND_CATEGORIES: readonly CommandCategory[] = Object.freeze([
  'git',
  'docker',
  'kubernetes',
  'npm',
  'cargo',
  'file_ops',
  'network',
  'system',
  'editor',
  'other',
] as const);

export type RiskLevel = 'safe' | 'moderate' | 'high' | 'critical';
/** Lowest first. */
export const RISK_LEVELS: readonly RiskLevel[] = Object.freeze([
  'safe',
  'moderate',
  'high',
  'critical',
] as const);

export interface ClassifyRule {
  /** Reported in `Classification.rules`. */
  name: string;
  /** Tried against every piece of the line (see the module comment). */
  pattern: RegExp;
  category?: CommandCategory;
  risk?: RiskLevel;
  /**
   * A match ends the evaluation of the piece it matched: rules after it are not tried on that
   * piece. So a final rule can mark a command safe, but never hides another command of the line.
   */
  final?: boolean;
}

/** A rule as the config gives it (`[[observe.rules]]`). */
export interface ClassifyRuleSpec {
  name: string;
  pattern: string;
  category?: string;
  risk?: string;
  final?: boolean;
}

export interface Classification {
  category: CommandCategory;
  riskLevel: RiskLevel;
  /** Names of the rules that matched, user rules first, in rule order. */
  rules: string[];
}

// ---------------------------------------------------------------------------------------------
// The default rules. Every repetition is bounded and every piece of a command is matched from
// an anchor, so a rule costs at most a few thousand steps per piece whatever the input.

/** End of a word. */
const E = '(?=\\s|$|[;&|)])';
/** The rest of one command, lazily: it never runs past a separator of the raw line. */
const A = '[^;&|\\n]{0,2048}?';
/** The command has an argument matching `x` (a whole word). */
const has = (x: string) => `(?=${A}\\s(?:${x})${E})`;
/** Options before a subcommand: `-C dir`, `--namespace=x`, `--no-pager`. */
const OPTS =
  '(?:\\s{1,8}--?[A-Za-z][\\w-]{0,31}(?:=[^\\s;&|]{0,256}|\\s{1,8}[^\\s;&|-][^\\s;&|]{0,255})?){0,6}';
/** `prog [options] subcommand` at the start of a command. */
const sub = (prog: string, subcmd: string) => `^(?:${prog})${OPTS}\\s{1,8}(?:${subcmd})${E}`;

const RECURSIVE = '-[A-Za-z]{0,15}[rR][A-Za-z]{0,15}|--recursive';
const RECURSIVE_CAPITAL = '-[A-Za-z]{0,15}R[A-Za-z]{0,15}|--recursive';
const FORCE = '-[A-Za-z]{0,15}f[A-Za-z]{0,15}|--force';
const SYSTEM_DIRS =
  '/\\*?|/(?:bin|boot|dev|etc|home|lib|lib32|lib64|opt|proc|root|sbin|srv|sys|usr|var|Users|System|Library|Applications|private)/?\\*?';
/** What `rm -r` must never be pointed at: the root, a top-level system directory, or home. */
const ROOTS = `${SYSTEM_DIRS}|~/?\\*?|\\$HOME/?\\*?|\\$\\{HOME\\}/?\\*?`;
const DISK = '/dev/(?:sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme[0-9]|mmcblk[0-9]|r?disk[0-9])[0-9a-z]{0,6}';
/** What one stage of a pipe holds: any character but a pipe, or a single-quoted word. */
const STAGE = "(?:[^\\n|']|'[^'\\n]{0,1024}'){0,4096}";
/** `|` or `|&`, not `||`. */
const PIPE = '(?<!\\|)\\|(?!\\|)&?';
const SHELL = '(?:[^\\s|]{0,64}/)?(?:ba|z|da|k|fi|tc|c|a)?sh';
/** Leading assignments and wrappers that a command as typed may carry before `sudo`. */
const WRAPPED =
  '^(?:(?:[A-Za-z_][A-Za-z0-9_]{0,63}=[^\\s;&|]{0,1024}|time|nohup|exec|command|builtin|then|do|else|!|\\{|nice(?:\\s{1,8}-n)?(?:\\s{1,8}-?[0-9]{1,3})?|env(?:\\s{1,8}-[A-Za-z]{1,8})?)\\s{1,8}){0,8}';

function rule(name: string, risk: RiskLevel, source: string, flags = ''): ClassifyRule {
  return { name, risk, pattern: new RegExp(source, flags) };
}

/** The built-in risk rules; the category comes from the program (see `classifyCommand`). */
export const DEFAULT_RULES: readonly ClassifyRule[] = Object.freeze([
  // critical
  rule('rm-root', 'critical', `^rm(?=\\s|$)(?:${has(RECURSIVE)}${has(ROOTS)}|${has('--no-preserve-root')})`),
  // The downloader starts a command, and each stage of the pipe after it is read one character
  // or one quoted word at a time up to the next pipe, so every start scans at most four stages
  // and the rule stays linear on long pipelines. `curl … | tee log | sh` counts too.
  rule(
    'download-to-shell',
    'critical',
    `(?:^|[;&|(])\\s{0,8}(?:curl|wget)(?=\\s)${STAGE}(?:${PIPE}${STAGE}){0,3}${PIPE}\\s{0,8}${SHELL}${E}`,
  ),
  rule(
    'shell-runs-download',
    'critical',
    `^(?:(?:ba|z|da|k|fi)?sh|eval|source|\\.)(?=\\s)[^\\n]{0,256}?(?:\\$\\(|<\\(|\`)\\s{0,8}(?:curl|wget)(?=\\s)`,
  ),
  rule('dd-to-disk', 'critical', `^dd(?=\\s)${has(`of=${DISK}`)}`),
  rule('mkfs', 'critical', '^(?:mkfs(?:\\.[A-Za-z0-9]{1,16})?|mke2fs|wipefs)(?=\\s|$)'),
  rule(
    'fork-bomb',
    'critical',
    '([A-Za-z_:][A-Za-z0-9_:]{0,31})\\s{0,8}\\(\\s{0,8}\\)\\s{0,8}\\{\\s{0,8}\\1\\s{0,8}\\|\\s{0,8}\\1\\s{0,8}&\\s{0,8};?\\s{0,8}\\}',
  ),
  rule(
    'chmod-777-root',
    'critical',
    `^chmod(?=\\s)${has(RECURSIVE_CAPITAL)}${has('0?777|[ugoa]{0,4}[+=]rwx')}${has(SYSTEM_DIRS)}`,
  ),
  rule(
    'chown-recursive-root',
    'critical',
    `^(?:chown|chgrp)(?=\\s)${has(RECURSIVE_CAPITAL)}${has(SYSTEM_DIRS)}`,
  ),
  rule('write-to-disk', 'critical', `(?:^|\\s)(?:[0-9]{0,2}|&)>{1,2}\\|?\\s{0,8}${DISK}${E}`),
  // high
  rule('rm-recursive-force', 'high', `^rm(?=\\s|$)${has(RECURSIVE)}${has(FORCE)}`),
  rule(
    'chmod-777-recursive',
    'high',
    `^chmod(?=\\s)${has(RECURSIVE_CAPITAL)}${has('0?777|[ugoa]{0,4}[+=]rwx')}`,
  ),
  rule(
    'git-force-push',
    'high',
    `${sub('git', 'push')}${has('--force(?:-with-lease)?(?:=[^\\s;&|]{0,256})?|-[A-Za-z]{0,8}f[A-Za-z]{0,8}|\\+[^\\s;&|]{1,256}')}`,
  ),
  rule('git-reset-hard', 'high', `${sub('git', 'reset')}${has('--hard')}`),
  rule('git-clean-force', 'high', `${sub('git', 'clean')}${has(FORCE)}`),
  rule('kubectl-delete', 'high', sub('kubectl', 'delete')),
  rule('docker-system-prune', 'high', sub('docker|podman', '(?:system|volume)\\s{1,8}prune')),
  rule('terraform-destroy', 'high', `${sub('terraform|tofu|terragrunt', `destroy|apply${has('-destroy')}`)}`),
  rule('sql-drop', 'high', '\\bDROP\\s{1,16}(?:TABLE|DATABASE|SCHEMA)\\b|^dropdb(?=\\s|$)', 'i'),
  rule(
    'firewall-flush',
    'high',
    `^ip6?tables(?=\\s)${has('-F|--flush')}|${sub('nft', 'flush\\s{1,8}ruleset')}|${sub('ufw', 'disable|reset')}`,
  ),
  rule(
    'shutdown-reboot',
    'high',
    `^(?:shutdown|reboot|halt|poweroff)(?=\\s|$)|${sub('systemctl', 'poweroff|reboot|halt|kexec')}|^init\\s{1,8}[06]${E}`,
  ),
  // moderate
  rule('sudo', 'moderate', `${WRAPPED}(?:sudo|doas|su)(?=\\s|$)`),
  rule('remove-files', 'moderate', '^(?:rm|shred|unlink)(?=\\s|$)'),
  rule('find-delete', 'moderate', `^find(?=\\s)${has('-delete|-exec(?:dir)?\\s{1,8}rm')}`),
  rule('change-permissions', 'moderate', '^(?:chmod|chown|chgrp)(?=\\s|$)'),
  rule('git-push', 'moderate', sub('git', 'push')),
  rule('package-publish', 'moderate', sub('npm|yarn|pnpm|bun|cargo', 'publish')),
  rule(
    'kill-processes',
    'moderate',
    `^kill(?=\\s)${has('-9|-KILL|-SIGKILL|-s\\s{1,8}(?:9|KILL|SIGKILL)|--signal[= ](?:9|KILL|SIGKILL)')}|^(?:pkill|killall)(?=\\s|$)`,
  ),
  rule(
    'service-stop',
    'moderate',
    `${sub('systemctl', 'stop|restart|disable|mask|kill|isolate')}|^service\\s{1,8}[^\\s;&|]{1,256}\\s{1,8}(?:stop|restart)${E}`,
  ),
  rule(
    'docker-remove',
    'moderate',
    sub(
      'docker|podman',
      'rm|rmi|kill|(?:container|image|volume|network)\\s{1,8}(?:rm|remove|prune)|(?:builder|system)\\s{1,8}prune',
    ),
  ),
  rule(
    'kubectl-change',
    'moderate',
    sub(
      'kubectl',
      'apply|create|replace|patch|scale|edit|drain|cordon|taint|rollout\\s{1,8}(?:restart|undo)',
    ),
  ),
]);

// ---------------------------------------------------------------------------------------------
// Programs and their categories.

/** Programs by category, as words separated by spaces. */
const PROGRAMS: Readonly<Record<Exclude<CommandCategory, 'other'>, string>> = {
  git: 'git gh tig git-lfs lazygit hub glab',
  docker: 'docker docker-compose podman podman-compose buildah nerdctl colima',
  kubernetes: 'kubectl helm k9s kubectx kubens minikube kind k3d k3s kustomize oc eksctl stern',
  npm: 'npm npx yarn pnpm pnpx node bun bunx deno corepack nvm volta',
  cargo: 'cargo rustc rustup rustfmt cargo-clippy',
  file_ops:
    'ls ll la exa eza cp mv rm rmdir mkdir touch find fd locate cat bat less more head tail chmod chown chgrp ln ' +
    'tar zip unzip gzip gunzip bzip2 xz zstd 7z rsync du df stat file tree cd pwd pushd popd grep egrep rg ag sed ' +
    'awk wc sort uniq cut tr diff patch realpath basename dirname readlink truncate shred unlink mktemp tee xxd ' +
    'hexdump split md5sum sha1sum sha256sum',
  network:
    'curl wget ssh scp sftp ping ping6 dig host nc ncat netcat netstat ss ip ifconfig nslookup traceroute ' +
    'tracepath mtr telnet ftp nmap tcpdump whois http https arp route socat mosh nmcli iw iwconfig',
  system:
    'systemctl service ps top htop btop kill pkill killall sudo doas su apt apt-get apt-cache dpkg brew dnf yum ' +
    'pacman zypper snap flatpak rpm apk mount umount shutdown reboot halt poweroff journalctl dmesg dd mkfs mke2fs ' +
    'wipefs fdisk parted lsblk blkid fsck swapon swapoff free uptime uname whoami id useradd userdel usermod ' +
    'passwd groupadd crontab launchctl sysctl modprobe lsmod insmod rmmod chroot iptables ip6tables nft ufw ' +
    'firewall-cmd lsof vmstat iostat renice env hostnamectl timedatectl loginctl init update-alternatives visudo',
  editor: 'vim nvim vi vim.tiny view nano emacs emacsclient code code-insiders hx helix micro',
};

const CATEGORY_OF = new Map<string, CommandCategory>(
  Object.entries(PROGRAMS).flatMap(([category, programs]) =>
    programs.split(' ').map((p) => [p, category as CommandCategory] as const),
  ),
);

function categoryOfProgram(program: string): CommandCategory {
  const known = CATEGORY_OF.get(program);
  if (known !== undefined) return known;
  if (/^(?:mkfs|fsck)\./.test(program)) return 'system';
  if (/^(?:editor|editor\.\w+)$/.test(program)) return 'editor';
  return 'other';
}

// ---------------------------------------------------------------------------------------------
// The shell-lite lexer: words, quotes, separators, redirections, substitutions. Not a shell
// parser (no expansion, no here-documents, no case/esac): enough to find the commands of a line.

interface Word {
  /** The word with its quotes undone. */
  value: string;
  /** How a rule sees it: bare, or single-quoted when it holds a space or a shell operator. */
  shown: string;
  /** A redirection operator (`>`, `2>&1`, `<<`): never a program or an argument. */
  op: boolean;
}

interface SimpleCommand {
  words: Word[];
  /** Its output goes to the next command through `|`. */
  pipes: boolean;
}

interface Lexed {
  /** The line without its comments. */
  clean: string;
  commands: SimpleCommand[];
  /** Command lines inside this one: `$(…)`, backticks, `<(…)`. */
  inner: string[];
}

const SPECIAL = /[\s;&|<>()`'"\\]/;

function closingQuote(s: string, from: number): number {
  for (let j = from; j < s.length; j++) {
    if (s[j] === '\\') j++;
    else if (s[j] === '"') return j;
  }
  return s.length;
}

function closingBacktick(s: string, from: number): number {
  for (let j = from; j < s.length; j++) {
    if (s[j] === '\\') j++;
    else if (s[j] === '`') return j;
  }
  return s.length;
}

/** Index of the `)` closing a `$(` / `<(` whose inside starts at `from` (the end when unclosed). */
function closingParen(s: string, from: number): number {
  let depth = 1;
  for (let j = from; j < s.length; j++) {
    const c = s[j];
    if (c === '\\') j++;
    else if (c === "'") {
      const k = s.indexOf("'", j + 1);
      j = k < 0 ? s.length : k;
    } else if (c === '"') j = closingQuote(s, j + 1);
    else if (c === '`') j = closingBacktick(s, j + 1);
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return j;
  }
  return s.length;
}

function lex(s: string): Lexed {
  const commands: SimpleCommand[] = [];
  const inner: string[] = [];
  const comments: Array<[number, number]> = [];
  let words: Word[] = [];
  let value = '';
  let started = false;
  let quoted = false;

  const endWord = () => {
    if (started) {
      words.push({
        value,
        shown: quoted && SPECIAL.test(value) ? `'${value.replace(/'/g, "'\\''")}'` : value,
        op: false,
      });
    }
    value = '';
    started = false;
    quoted = false;
  };
  const endCommand = (pipes: boolean) => {
    endWord();
    if (words.length > 0) commands.push({ words, pipes });
    words = [];
  };
  /** A `$(…)` or `<(…)` whose `(` is at `open`: its inside is a command line of its own. */
  const substitution = (open: number): number => {
    const close = closingParen(s, open + 1);
    // `$((…))` is arithmetic, not a command.
    if (s[open + 1] !== '(') inner.push(s.slice(open + 1, close));
    return close;
  };

  let i = 0;
  while (i < s.length) {
    const c = s[i] as string;
    if (c === '\\') {
      if (s[i + 1] === '\n') {
        i += 2;
        continue;
      }
      value += s[i + 1] ?? '';
      started = true;
      quoted = true;
      i += 2;
    } else if (c === "'") {
      const close = s.indexOf("'", i + 1);
      const end = close < 0 ? s.length : close;
      value += s.slice(i + 1, end);
      started = true;
      quoted = true;
      i = end + 1;
    } else if (c === '"') {
      started = true;
      quoted = true;
      i++;
      while (i < s.length && s[i] !== '"') {
        const d = s[i] as string;
        if (d === '\\' && i + 1 < s.length && '$`"\\\n'.includes(s[i + 1] as string)) {
          value += s[i + 1];
          i += 2;
        } else if (d === '$' && s[i + 1] === '(') {
          const close = substitution(i + 1);
          value += s.slice(i, close + 1);
          i = close + 1;
        } else if (d === '`') {
          const close = closingBacktick(s, i + 1);
          inner.push(s.slice(i + 1, close));
          value += s.slice(i, close + 1);
          i = close + 1;
        } else {
          value += d;
          i++;
        }
      }
      i++;
    } else if (c === '$' && s[i + 1] === '(') {
      const close = substitution(i + 1);
      value += s.slice(i, close + 1);
      started = true;
      quoted = true;
      i = close + 1;
    } else if (c === '`') {
      const close = closingBacktick(s, i + 1);
      inner.push(s.slice(i + 1, close));
      value += s.slice(i, close + 1);
      started = true;
      quoted = true;
      i = close + 1;
    } else if (c === '#' && !started) {
      const nl = s.indexOf('\n', i);
      const end = nl < 0 ? s.length : nl;
      comments.push([i, end]);
      i = end;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      endWord();
      i++;
    } else if (c === '\n' || c === ';' || c === '(' || c === ')') {
      endCommand(false);
      i++;
    } else if (c === '|') {
      const pipes = s[i + 1] !== '|';
      endCommand(pipes);
      i += s[i + 1] === '|' || s[i + 1] === '&' ? 2 : 1;
    } else if (c === '&' && s[i + 1] !== '>') {
      endCommand(false);
      i += s[i + 1] === '&' ? 2 : 1;
    } else if (c === '<' || c === '>' || c === '&') {
      // A redirection: `>`, `>>`, `2>&1`, `&>`, `<<<`, `>|`; digits right before it are its fd.
      let op = '';
      if (started && !quoted && /^[0-9]{1,2}$/.test(value)) {
        op = value;
        value = '';
        started = false;
      } else endWord();
      let j = i;
      if (s[j] === '&') op += s[j++];
      while (j < s.length && j - i < 3 && (s[j] === '<' || s[j] === '>')) op += s[j++];
      if ((op.endsWith('<') || op.endsWith('>')) && s[j] === '(' && j === i + 1) {
        // Process substitution `<(cmd)`: a word whose inside runs.
        const close = substitution(j);
        value = s.slice(i, close + 1);
        started = true;
        quoted = true;
        i = close + 1;
        continue;
      }
      if (s[j] === '&') {
        op += s[j++];
        while (j < s.length && /[0-9-]/.test(s[j] as string)) op += s[j++];
      } else if (s[j] === '|') op += s[j++];
      words.push({ value: op, shown: op, op: true });
      i = j;
    } else {
      value += c;
      started = true;
      i++;
    }
  }
  endCommand(false);
  let clean = s;
  for (let k = comments.length - 1; k >= 0; k--) {
    const [from, to] = comments[k] as [number, number];
    clean = clean.slice(0, from) + clean.slice(to);
  }
  return { clean: clean.trim(), commands, inner };
}

// ---------------------------------------------------------------------------------------------
// Wrappers: what runs the real program.

interface Wrapper {
  /** Short options that take a value (`-u root`, `-uroot`). */
  valued: string;
  /** Long options that take the next word as their value. */
  long?: readonly string[];
  /** Operands before the command (`timeout 5s cmd`). */
  operands?: number;
}

const WRAPPERS: Readonly<Record<string, Wrapper>> = {
  sudo: {
    valued: 'ughpCDrtUT',
    long: ['--user', '--group', '--host', '--prompt', '--chdir', '--role', '--type', '--other-user'],
  },
  doas: { valued: 'uC' },
  env: { valued: 'uCS', long: ['--unset', '--chdir', '--split-string'] },
  time: { valued: 'fo', long: ['--format', '--output'] },
  nohup: { valued: '' },
  nice: { valued: 'n', long: ['--adjustment'] },
  exec: { valued: 'a' },
  command: { valued: '' },
  builtin: { valued: '' },
  xargs: {
    valued: 'IdEaLnPs',
    long: ['--delimiter', '--arg-file', '--max-args', '--max-procs', '--max-chars', '--max-lines'],
  },
  timeout: { valued: 'sk', long: ['--signal', '--kill-after'], operands: 1 },
  watch: { valued: 'nd', long: ['--interval'] },
  stdbuf: { valued: 'ioe' },
};

const KEYWORDS = new Set(['if', 'then', 'else', 'elif', 'do', 'while', 'until', '!', '{']);
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])?\+?=/;

/** Index after the options of `words[from…]` (a wrapper's, a shell's, ssh's). */
function skipOptions(
  words: readonly Word[],
  from: number,
  valued: string,
  long: readonly string[] = [],
): number {
  let k = from;
  while (k < words.length) {
    const w = (words[k] as Word).value;
    if (w === '--') return k + 1;
    if (!w.startsWith('-') || w === '-') return k;
    if (w.startsWith('--')) {
      k += !w.includes('=') && long.includes(w) ? 2 : 1;
      continue;
    }
    // A cluster such as `-Eu root`: the first letter that takes a value takes the rest, or the next word.
    const at = [...w.slice(1)].findIndex((ch) => valued.includes(ch));
    k += at >= 0 && at === w.length - 2 ? 2 : 1;
  }
  return k;
}

interface Stripped {
  /** Index of the program in `words` (`words.length` when there is none). */
  at: number;
  /** The wrappers passed on the way (`sudo`, `env`, …). */
  wrappers: string[];
}

function strip(words: readonly Word[]): Stripped {
  const wrappers: string[] = [];
  let k = 0;
  while (k < words.length) {
    const w = words[k] as Word;
    if (w.op) {
      // `>out cmd`: the redirection and its target come before the program.
      k += 2;
      continue;
    }
    const name = w.value;
    if (ASSIGNMENT.test(name) || KEYWORDS.has(name)) {
      k++;
      continue;
    }
    const wrapper = WRAPPERS[baseName(name)];
    if (wrapper === undefined) break;
    wrappers.push(baseName(name));
    k = skipOptions(words, k + 1, wrapper.valued, wrapper.long);
    k += Math.min(wrapper.operands ?? 0, words.length - k);
  }
  return { at: Math.min(k, words.length), wrappers };
}

function baseName(program: string): string {
  return program.slice(program.lastIndexOf('/') + 1);
}

const SHELLS = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'mksh', 'ash', 'fish', 'csh', 'tcsh', 'busybox']);

/** Command lines a command hands to a shell: `bash -c '…'`, `su -c '…'`, `eval …`, `ssh host …`. */
function handedToShell(program: string, args: readonly Word[]): string | undefined {
  if (SHELLS.has(program) || program === 'su') {
    for (let k = 0; k < args.length; k++) {
      const w = (args[k] as Word).value;
      if (w === '--command' || (/^-[A-Za-z]{1,8}$/.test(w) && w.includes('c'))) return args[k + 1]?.value;
      if (w.startsWith('--command=')) return w.slice('--command='.length);
      if (w === '-o' || w === '+o' || w === '-O' || w === '+O') k++;
      // A shell's first operand is a script to run; su's is the user, and its -c may follow it.
      else if (!/^[-+]/.test(w) && program !== 'su') return undefined;
    }
    return undefined;
  }
  if (program === 'eval') return args.map((w) => w.value).join(' ');
  if (program === 'ssh') {
    const host = skipOptions(args, 0, 'BbcDEeFIiJLlmOoPpQRSWw');
    const rest = args.slice(host + 1);
    return rest.length > 0 ? rest.map((w) => w.value).join(' ') : undefined;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The pieces of a line the rules are tried against.

/** Depth of command lines inside command lines that is still looked into. */
const MAX_DEPTH = 3;
/** Commands looked at in one line, nested ones included: far above any typed line, a bound on hostile input. */
const MAX_COMMANDS = 2000;

interface First {
  program: string | undefined;
  /** The words after the program. */
  args: Word[];
  wrappers: string[];
}

interface Pieces {
  pieces: Set<string>;
  commands: number;
  first?: First;
}

function collect(line: string, depth: number, into: Pieces): void {
  const { clean, commands, inner } = lex(line);
  if (clean !== '') into.pieces.add(clean);
  let pipeline: string[] = [];
  const nested: string[] = [...inner];
  for (const cmd of commands) {
    if (into.commands++ >= MAX_COMMANDS) break;
    const { at, wrappers } = strip(cmd.words);
    const program = at < cmd.words.length ? baseName((cmd.words[at] as Word).value) : undefined;
    const args = cmd.words.slice(at + 1);
    if (into.first === undefined) into.first = { program, args, wrappers };
    const typed = cmd.words.map((w) => w.shown).join(' ');
    // The program by its name alone, so `^rm` also matches `/bin/rm`.
    const bare = [program ?? '', ...args.map((w) => w.shown)].join(' ').trim();
    into.pieces.add(typed);
    if (bare !== '') into.pieces.add(bare);
    pipeline.push(bare);
    if (!cmd.pipes) {
      if (pipeline.length > 1) into.pieces.add(pipeline.join(' | '));
      pipeline = [];
    }
    if (program !== undefined) {
      const handed = handedToShell(program, args);
      if (handed !== undefined) nested.push(handed);
    }
  }
  if (pipeline.length > 1) into.pieces.add(pipeline.join(' | '));
  if (depth >= MAX_DEPTH) return;
  for (const n of nested) {
    if (into.commands >= MAX_COMMANDS) break;
    collect(n, depth + 1, into);
  }
}

function analyse(command: string): Pieces {
  const into: Pieces = { pieces: new Set(), commands: 0 };
  collect(command, 0, into);
  return into;
}

function matches(pattern: RegExp, text: string): boolean {
  // A global or sticky regex given by a caller would carry its position from one test to the next.
  if (pattern.global || pattern.sticky) pattern.lastIndex = 0;
  return pattern.test(text);
}

/**
 * The category and risk level of a command line (user rules first, then DEFAULT_RULES).
 * @example
 * classifyCommand('sudo rm -rf /'); // { category: 'file_ops', riskLevel: 'critical', rules: ['rm-root', 'rm-recursive-force', 'sudo', 'remove-files'] }
 */
export function classifyCommand(command: string, userRules: readonly ClassifyRule[] = []): Classification {
  const all = userRules.length === 0 ? DEFAULT_RULES : [...userRules, ...DEFAULT_RULES];
  const { pieces, first } = analyse(command);
  const matched: boolean[] = all.map(() => false);
  let risk = 0;
  for (const piece of pieces) {
    for (let r = 0; r < all.length; r++) {
      const rule = all[r] as ClassifyRule;
      // A rule that already matched has given all it can, unless it is final and must stop this piece too.
      if (matched[r] && !rule.final) continue;
      if (!matches(rule.pattern, piece)) continue;
      matched[r] = true;
      if (rule.risk !== undefined) risk = Math.max(risk, RISK_LEVELS.indexOf(rule.risk));
      if (rule.final) break;
    }
  }
  const byRule = all.find((rule, r) => matched[r] && rule.category !== undefined)?.category;
  return {
    category: byRule ?? defaultCategory(first),
    riskLevel: RISK_LEVELS[risk] as RiskLevel,
    rules: all.filter((_, r) => matched[r]).map((rule) => rule.name),
  };
}

function defaultCategory(first: First | undefined): CommandCategory {
  if (first === undefined) return 'other';
  if (first.program !== undefined) return categoryOfProgram(first.program);
  // `sudo -i`, `env`: a wrapper alone works on the system.
  return first.wrappers.some((w) => w === 'sudo' || w === 'doas' || w === 'env') ? 'system' : 'other';
}

/** Where the config gives user rules. */
const KEY = 'observe.rules';
const RULE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/**
 * Compiles user rules from the config (`[[observe.rules]]`); a ConfigError names the bad rule.
 * @example
 * compileRules([{ name: 'scratch', pattern: '^rm -rf /tmp/scratch$', risk: 'safe', final: true }]);
 */
export function compileRules(specs: readonly ClassifyRuleSpec[]): ClassifyRule[] {
  return specs.map((spec, i) => {
    const name: unknown = spec?.name;
    if (typeof name !== 'string' || !RULE_NAME.test(name)) {
      throw new ConfigError(
        `config key ${KEY}: rule #${i + 1}: name ${JSON.stringify(name)} must be 1-64 letters, digits, '-', '_' or '.'`,
        {
          key: KEY,
          rule: typeof name === 'string' ? name : i + 1,
        },
      );
    }
    const bad = (what: string) =>
      new ConfigError(`config key ${KEY}: rule '${name}': ${what}`, { key: KEY, rule: name });
    if (typeof spec.pattern !== 'string' || spec.pattern === '')
      throw bad('pattern must be a non-empty regular expression');
    let pattern: RegExp;
    try {
      pattern = new RegExp(spec.pattern);
    } catch (err) {
      throw bad(`${JSON.stringify(spec.pattern)} is not a regular expression: ${(err as Error).message}`);
    }
    const out: ClassifyRule = { name, pattern };
    if (spec.category !== undefined) {
      if (!(COMMAND_CATEGORIES as readonly unknown[]).includes(spec.category)) {
        throw bad(`category ${JSON.stringify(spec.category)} is not one of ${COMMAND_CATEGORIES.join(', ')}`);
      }
      out.category = spec.category as CommandCategory;
    }
    if (spec.risk !== undefined) {
      if (!(RISK_LEVELS as readonly unknown[]).includes(spec.risk)) {
        throw bad(`risk ${JSON.stringify(spec.risk)} is not one of ${RISK_LEVELS.join(', ')}`);
      }
      out.risk = spec.risk as RiskLevel;
    }
    if (spec.final !== undefined) {
      if (typeof spec.final !== 'boolean')
        throw bad(`final must be true or false, not ${JSON.stringify(spec.final)}`);
      out.final = spec.final;
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------
// The shape of a command.

/** Programs whose first word after the options is a subcommand worth keeping (`git commit`, `kubectl get`). */
const SUBCOMMANDS: Readonly<Record<string, { valued?: string; long?: readonly string[] }>> = {
  git: { valued: 'Cc', long: ['--git-dir', '--work-tree', '--namespace', '--exec-path', '--config-env'] },
  gh: { valued: 'R', long: ['--repo'] },
  glab: {},
  docker: { valued: 'Hcl', long: ['--host', '--context', '--config', '--log-level'] },
  'docker-compose': { valued: 'fp', long: ['--file', '--project-name', '--profile', '--env-file'] },
  podman: { long: ['--url', '--connection', '--root'] },
  kubectl: {
    valued: 'ns',
    long: ['--namespace', '--context', '--cluster', '--kubeconfig', '--server', '--user'],
  },
  helm: { valued: 'n', long: ['--namespace', '--kube-context', '--kubeconfig'] },
  minikube: { valued: 'p', long: ['--profile'] },
  kind: {},
  npm: { long: ['--prefix', '--workspace'] },
  yarn: { long: ['--cwd'] },
  pnpm: { valued: 'C', long: ['--dir', '--filter'] },
  bun: {},
  deno: {},
  cargo: { valued: 'Z', long: ['--config', '--manifest-path'] },
  rustup: {},
  systemctl: { valued: 'HM', long: ['--host', '--machine'] },
  apt: {},
  'apt-get': {},
  brew: {},
  dnf: {},
  yum: {},
  pacman: {},
  snap: {},
  pip: {},
  pip3: {},
  go: {},
  terraform: { long: ['-chdir'] },
  tofu: {},
  aws: { long: ['--profile', '--region'] },
  gcloud: {},
  az: {},
  ip: {},
  nmcli: {},
  journalctl: {},
};

const PROGRAM_SHAPE = /^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,39}$/;
const SUBCOMMAND_SHAPE = /^[a-z][a-z0-9-]{0,23}$/;

/**
 * A short normalized shape of a command for counting distinct patterns without keeping the command: program + subcommand, e.g. `git commit`, `docker run`, `ls`; no arguments, paths or values.
 * @example
 * commandPattern('sudo git -C ~/src commit -m "secret message"'); // 'git commit'
 */
export function commandPattern(command: string): string {
  const { first } = analyse(command);
  if (first === undefined) return '';
  const program = first.program;
  if (program === undefined) return first.wrappers[0] ?? '';
  // A program that does not look like one (a pasted value, `$EDITOR`) is not kept at all.
  if (!PROGRAM_SHAPE.test(program) || redactSecrets(program).redacted > 0) return '?';
  const sub = SUBCOMMANDS[program];
  if (sub === undefined) return program;
  let at = skipOptions(first.args, 0, sub.valued ?? '', sub.long);
  // `cargo +nightly build`: a toolchain before the subcommand.
  while (first.args[at]?.value.startsWith('+'))
    at = skipOptions(first.args, at + 1, sub.valued ?? '', sub.long);
  const next = first.args[at];
  return next !== undefined && !next.op && SUBCOMMAND_SHAPE.test(next.value)
    ? `${program} ${next.value}`
    : program;
}
