/**
 * Shell hooks for Weft's terminal observation: the snippet each shell sources to append every interactive
 * command to a per-shell spool file, and the code that installs it into (and removes it from) the user's
 * rc file. The daemon ingests the spool later; the hook only ever appends to files, so it keeps working
 * while the daemon is down.
 *
 * Spool contract (format 1): one file per shell process, `<shell>-<pid>-<startEpochSeconds>.spool`, in
 * a directory created with mode 0700; one record per command, appended with `>>` by a single printf:
 * `1 US ts US shell US exit US duration_ms US cwd US command RS LF` (US = \x1f, RS = \x1e). Files whose
 * name starts with a dot are the hooks' scratch files, not spool.
 */
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';

export type ObservedShell = 'bash' | 'zsh' | 'fish' | 'sh';

export const OBSERVED_SHELLS: readonly ObservedShell[] = ['bash', 'zsh', 'fish', 'sh'];

export const SPOOL_FORMAT_VERSION = 1;

const BEGIN = '# >>> weft observe >>>';
const END = '# <<< weft observe <<<';
/** The block's machine-readable line, so status can report what is installed without parsing shell. */
const META = '# weft-observe ';
const DIR_PLACEHOLDER = '__WEFT_SPOOL_DIR__';

const BASH_HOOK = `if [[ -n "\${BASH_VERSION-}" && $- == *i* ]] && (( BASH_VERSINFO[0] >= 5 )); then
# How bash is observed, and why this way (forks are allowed only here, at start-up):
# - PS0 is expanded once per command line that bash is about to run (never for an empty line). Its
#   expansion assigns the start time and cwd as a side effect of an associative-array subscript that
#   expands to nothing: no command substitution, so no fork, and the user's PS0 is kept in front.
# - PROMPT_COMMAND gets _weft_bash_precmd prepended: it reads $? first, then the command line from
#   \`history 1\` (the line as bash stored it, so a repeated line is there every time), written to a
#   scratch file and read back with \`read\`, since bash 5.2 cannot capture a builtin's output without
#   forking. It returns the status it found, so whatever runs after it still sees $?.
# - Whether a line was added to history is seen by comparing \`history 1\` (number and text) with its value
#   at the previous prompt. That comparison must tell "not added because private" from "not added because
#   repeated", so the hook takes over the one HISTCONTROL flag that would blur the two:
#   * without erasedups, ignorespace and HISTIGNORE stay with bash (a leading-space line never enters
#     history, so it cannot leak from there) and ignoredups (or a HISTIGNORE \`&\`) is emulated: the line is
#     added, recorded, then deleted with \`history -d -1\`;
#   * with erasedups, a repeat leaves history unchanged, so ignorespace and HISTIGNORE are emulated
#     instead, as bash-preexec does: the line is added, seen, not recorded, and deleted here at the next
#     prompt (if the shell dies while such a command runs, bash may save it to HISTFILE first).
#   The user's own values are kept in _weft_hc_user/_weft_hi_user and re-read whenever HISTCONTROL or
#   HISTIGNORE change. Lines matching HISTIGNORE are never recorded.
_weft_observe_bash_init() {
  local dir=$1 f pid stale=() files=()
  [[ -d $dir ]] || mkdir -p -m 700 -- "$dir" 2>/dev/null
  # Not a directory of this user's own (say, one planted in a shared /dev/shm): record nothing there.
  [[ -d $dir && ! -L $dir && -O $dir ]] || return 0
  if [[ -z \${_weft_file-} ]]; then
    _weft_file=$dir/bash-$$-$EPOCHSECONDS.spool _weft_tmp=$dir/.bash-$$.tmp
    _weft_hc=$'\\001' _weft_hi=$'\\001'
    # Scratch files left by shells that are gone.
    mapfile -t files < <(compgen -G "$dir/.bash-*.tmp")
    for f in "\${files[@]}"; do
      pid=\${f##*/.bash-} pid=\${pid%.tmp}
      [[ $pid != "$$" ]] && ! kill -0 "$pid" 2>/dev/null && stale+=("$f")
    done
    (( \${#stale[@]} )) && rm -f -- "\${stale[@]}" 2>/dev/null
  fi
  : "\${_weft_t0=}" "\${_weft_cwd=}" "\${_weft_prev=}" "\${_weft_primed=}"
  declare -gA _weft_a=()
  _weft_ps0='\${_weft_a[\${_weft_t0:=\${EPOCHREALTIME-}}\${_weft_cwd:=$PWD}]-}'
  [[ \${PS0-} == *"$_weft_ps0"* ]] || PS0=\${PS0-}$_weft_ps0
  [[ " \${PROMPT_COMMAND[*]-} " == *_weft_bash_precmd* ]] ||
    PROMPT_COMMAND=_weft_bash_precmd\${PROMPT_COMMAND:+$'\\n'$PROMPT_COMMAND}
  if [[ \${HISTCONTROL-} != "$_weft_hc" || \${HISTIGNORE-} != "$_weft_hi" ]]; then
    _weft_hc_user=\${HISTCONTROL-} _weft_hi_user=\${HISTIGNORE-}
    _weft_bash_histctl
  fi
}

# -- per-command: shell builtins only (no command substitution, no pipes, no subshells) --
_weft_bash_histctl() {
  local rest=$_weft_hc_user item keep= pats=
  _weft_want_space= _weft_want_dups= _weft_erase= _weft_hi_pats=()
  while [[ -n $rest ]]; do
    item=\${rest%%:*}
    [[ $rest == *:* ]] && rest=\${rest#*:} || rest=
    case $item in
      ignoreboth) _weft_want_space=1 _weft_want_dups=1 ;;
      ignorespace) _weft_want_space=1 ;;
      ignoredups) _weft_want_dups=1 ;;
      erasedups) _weft_erase=1 ;;
      ?*) keep+=:$item ;;
    esac
  done
  # HISTIGNORE splits on colons that no backslash escapes; a lone \`&\` is ignoredups by another name.
  rest=\${_weft_hi_user//\\\\:/$'\\001'}
  while [[ -n $rest ]]; do
    item=\${rest%%:*}
    [[ $rest == *:* ]] && rest=\${rest#*:} || rest=
    item=\${item//$'\\001'/\\\\:}
    if [[ $item == '&' ]]; then _weft_want_dups=1
    elif [[ -n $item ]]; then _weft_hi_pats+=("$item") pats+=:$item
    fi
  done
  if [[ -n $_weft_erase ]]; then
    keep+=:erasedups
    [[ -n $_weft_want_dups ]] && keep+=:ignoredups
    HISTIGNORE=
  else
    [[ -n $_weft_want_space ]] && keep+=:ignorespace
    HISTIGNORE=\${pats#:}
  fi
  HISTCONTROL=\${keep#:}
  _weft_hc=$HISTCONTROL _weft_hi=$HISTIGNORE
}

_weft_bash_ignored() {
  local pat
  for pat in "\${_weft_hi_pats[@]}"; do
    [[ $1 == $pat ]] && return 0
  done
  return 1
}

_weft_bash_precmd() {
  local s=$? t1=\${EPOCHREALTIME-} t0=$_weft_t0 cwd=$_weft_cwd cur= text= prev del= ms=
  _weft_t0= _weft_cwd=
  if [[ \${HISTCONTROL-} != "$_weft_hc" || \${HISTIGNORE-} != "$_weft_hi" ]]; then
    _weft_hc_user=\${HISTCONTROL-} _weft_hi_user=\${HISTIGNORE-}
    _weft_bash_histctl
  fi
  [[ \${PS0-} == *"$_weft_ps0"* ]] || PS0=\${PS0-}$_weft_ps0
  # The scratch file is overwritten in place, never truncated (truncating a file that holds data costs
  # ~0.2 ms on ext4, more than all the rest), and ends with a NUL: \`read -d ''\` stops there, and no
  # bash string can hold one. Redirections are ordered so a failing one is silenced too.
  { HISTTIMEFORMAT= builtin history 1; builtin printf '\\0'; } 2>/dev/null 1<> "$_weft_tmp"
  IFS= builtin read -r -d '' cur 2>/dev/null < "$_weft_tmp"
  if [[ -z $_weft_primed ]]; then
    # The first prompt: history now holds HISTFILE (bash loads it after the rc files), no command ran.
    _weft_primed=1 _weft_prev=$cur
    return $s
  fi
  prev=\${_weft_prev#*[0-9][ *] } prev=\${prev%$'\\n'}
  if [[ $cur != "$_weft_prev" ]]; then
    text=\${cur#*[0-9][ *] } text=\${text%$'\\n'}
    if [[ $text == ' '* ]]; then
      [[ -n $_weft_want_space ]] && del=1
      text=
    elif [[ -n $_weft_erase ]] && _weft_bash_ignored "$text"; then
      del=1 text=
    elif [[ -z $_weft_erase && -n $_weft_want_dups && -n $_weft_prev && $text == "$prev" ]]; then
      del=1
    fi
    if [[ -n $del ]]; then builtin history -d -1; else _weft_prev=$cur; fi
    # Text that must not be kept is blanked in the scratch file too (4 bytes per character covers UTF-8).
    [[ -z $text ]] && builtin printf '%*s' $(( \${#cur} * 4 )) '' 2>/dev/null 1<> "$_weft_tmp"
  elif [[ -n $_weft_erase && -o history && $prev != ' '* ]]; then
    # Unchanged history under erasedups/ignoredups: the line repeated the previous one.
    text=$prev
  fi
  # cwd is set only when PS0 ran, i.e. a command line was executed (not a syntax error, not Enter alone).
  if [[ -n $cwd && -n $text ]]; then
    [[ -n $t0 && -n $t1 ]] && ms=$(( (10#\${t1//[!0-9]/} - 10#\${t0//[!0-9]/}) / 1000 ))
    # EPOCHREALTIME uses the locale's decimal point; the spool wants '.'.
    builtin printf '1\\037%s\\037bash\\037%s\\037%s\\037%s\\037%s\\036\\n' \\
      "\${t0/[!0-9]/.}" "$s" "$ms" "$cwd" "$text" 2>/dev/null >> "$_weft_file"
  fi
  return $s
}
# -- end per-command --

_weft_observe_bash_init __WEFT_SPOOL_DIR__
unset -f _weft_observe_bash_init
fi
`;

const ZSH_HOOK = `if [[ -n "\${ZSH_VERSION-}" && -o interactive ]]; then
# preexec gets the line as typed in $1 (even when HIST_IGNORE_SPACE or HIST_IGNORE_DUPS keep it out of
# history; $3 would be the alias-expanded text); precmd reads $? first, and zsh gives every precmd hook
# the same $?. Both run \`emulate -L zsh\` so the user's options (NO_UNSET, KSH_ARRAYS, NO_CLOBBER...) do
# not change them; $epochtime (zsh/datetime) is read once per call so seconds and nanoseconds agree.
() {
  emulate -L zsh
  zmodload zsh/datetime 2>/dev/null || return 0
  local dir=$1
  [[ -d $dir ]] || command mkdir -p -m 700 -- $dir 2>/dev/null
  # Not a directory of this user's own (say, one planted in a shared /dev/shm): record nothing there.
  [[ -d $dir && ! -L $dir && -O $dir ]] || return 0
  (( \${+_weft_file} )) || typeset -g _weft_file=$dir/zsh-$$-$EPOCHSECONDS.spool
  typeset -g _weft_cmd _weft_cwd
  typeset -ga _weft_t0

  # -- per-command: shell builtins only (no command substitution, no pipes, no subshells) --
  _weft_zsh_preexec() {
    emulate -L zsh
    _weft_t0=($epochtime) _weft_cmd=$1 _weft_cwd=$PWD
  }
  _weft_zsh_precmd() {
    local s=$?
    emulate -L zsh
    local -a t1
    t1=($epochtime)
    local cmd=$_weft_cmd cwd=$_weft_cwd
    _weft_cmd= _weft_cwd=
    if [[ -n $cwd && -n $cmd && $cmd != ' '* && \${#_weft_t0} == 2 ]]; then
      { builtin printf '1\\037%d.%06d\\037zsh\\037%d\\037%d\\037%s\\037%s\\036\\n' \\
          $_weft_t0[1] $(( _weft_t0[2] / 1000 )) $s \\
          $(( (t1[1] - _weft_t0[1]) * 1000 + (t1[2] - _weft_t0[2]) / 1000000 )) \\
          $cwd $cmd >> $_weft_file } 2>/dev/null
    fi
    return s
  }
  # -- end per-command --

  if autoload -Uz add-zsh-hook 2>/dev/null; then
    add-zsh-hook preexec _weft_zsh_preexec
    add-zsh-hook precmd _weft_zsh_precmd
  else
    typeset -ga preexec_functions precmd_functions
    preexec_functions=(\${preexec_functions:#_weft_zsh_preexec} _weft_zsh_preexec)
    precmd_functions=(\${precmd_functions:#_weft_zsh_precmd} _weft_zsh_precmd)
  fi
} __WEFT_SPOOL_DIR__
fi
`;

const FISH_HOOK = `set -l __weft_spool_dir __WEFT_SPOOL_DIR__
status is-interactive; and not set -q __weft_file; and begin
    test -d $__weft_spool_dir; or command mkdir -p -m 700 -- $__weft_spool_dir 2>/dev/null
    # Not a directory of this user's own (say, one planted in a shared /dev/shm): record nothing there.
    test -d $__weft_spool_dir; and not test -L $__weft_spool_dir; and test -O $__weft_spool_dir
end
and begin
    # fish 3.6 has no epoch clock builtin, and \`history search --show-time\` cannot stand in: it has whole
    # seconds and hides the running command while it is pending. /proc/uptime can be read with the \`read\`
    # builtin (no fork) and has 10 ms steps, so the offset from it to the wall clock is measured once,
    # here, with one \`date\` call: ts = offset + uptime, within about 10 ms. If the wall clock is stepped
    # later the offset goes stale; every 32nd command the postexec handler compares it with the spool
    # file's mtime and, if they disagree by more than 2 s, re-anchors on that mtime (then within 0.5 s).
    # Without /proc, or with a \`date\` that has no %N, ts is a scratch file's mtime: whole seconds.
    set -g __weft_dir $__weft_spool_dir
    set -g __weft_off
    set -l start
    if test -r /proc/uptime
        read -l up0 _ </proc/uptime
        set -l ns (command date +%s%N 2>/dev/null)
        read -l up1 _ </proc/uptime
        if string match -qr '^[0-9]{19}$' -- "$ns"
            set __weft_off (math -s3 "$ns / 1000000000 - ($up0 + $up1) / 2")
            set start (string sub -l 10 -- $ns)
        end
    end
    test -n "$start"; or set start (command date +%s 2>/dev/null)
    set -g __weft_file $__weft_dir/fish-$fish_pid-$start.spool
    set -g __weft_clock $__weft_dir/.fish-$fish_pid.clock
    set -g __weft_t0
    set -g __weft_cwd
    set -g __weft_tick

    # -- per-command: shell builtins only (fish runs a builtin in ( ) without forking) --
    # fish saves and restores $status around event handlers, so the prompt and other handlers keep it.
    function __weft_preexec --on-event fish_preexec
        set -g __weft_cwd
        set -q fish_private_mode; and return
        test -n "$argv[1]"; or return
        builtin string match -q -- ' *' "$argv[1]"; and return
        if test -n "$__weft_off"
            builtin read -l up _ </proc/uptime
            set -g __weft_t0 $up
        else
            builtin true >$__weft_clock 2>/dev/null
            set -g __weft_t0 (builtin path mtime -- $__weft_clock 2>/dev/null)
        end
        set -g __weft_cwd $PWD
    end

    function __weft_postexec --on-event fish_postexec
        set -l s $status
        set -l ms $CMD_DURATION
        test -n "$__weft_cwd"; or return $s
        set -l cwd $__weft_cwd
        set -g __weft_cwd
        set -l ts $__weft_t0
        test -n "$__weft_off"; and set ts (builtin math -s2 "$__weft_off + $ts")
        begin
            builtin printf '1\\x1f%s\\x1ffish\\x1f%s\\x1f%s\\x1f%s\\x1f%s\\x1e\\n' "$ts" "$s" "$ms" "$cwd" "$argv[1]" >>$__weft_file
        end 2>/dev/null
        # The wall-clock check costs two ( ), ~0.1 ms: done every 32nd command, counted without math.
        set -a __weft_tick 1
        if test -n "$__weft_off"; and set -q __weft_tick[32]
            set -g __weft_tick
            builtin read -l up _ </proc/uptime
            set -l wall (builtin path mtime -- $__weft_file 2>/dev/null)
            if test -n "$wall"; and test (builtin math -s0 "abs($__weft_off + $up - $wall)") -gt 2
                set -g __weft_off (builtin math -s3 "$wall + 0.5 - $up")
            end
        end
        return $s
    end
    # -- end per-command --
end
`;

const SH_HOOK = `# POSIX sh has no hook that runs around a command, and dash (Debian's sh) has no history and no fc:
# there nothing can be recorded, and this block only creates the spool dir. Shells that keep a history
# (bash --posix or bash as sh, ksh, mksh) are recorded through PS1: a command substitution in it runs
# _weft_sh_prompt at every prompt, which costs one subshell (a fork, no exec) per prompt. It records the
# newest history entry if its number moved since the previous prompt, with $? and the cwd of the previous
# prompt; ts is when that previous prompt was drawn (not when the command started), duration is unknown,
# and a multi-line command is as the shell's history keeps it. A leading-space line is skipped only when
# the history keeps the space. Interactive sh reads this file only if ENV names it (export ENV=~/.shrc).
case $- in
*i*)
  _weft_dir=__WEFT_SPOOL_DIR__
  [ -d "$_weft_dir" ] || mkdir -p -m 700 "$_weft_dir" 2>/dev/null
  # Only into a directory of this user's own (not one planted in a shared /dev/shm).
  if [ -d "$_weft_dir" ] && [ ! -L "$_weft_dir" ] && [ -O "$_weft_dir" ] && [ -z "\${_weft_file-}" ] && { [ -n "\${BASH_VERSION-}" ] || command -v fc >/dev/null 2>&1; }; then
    _weft_state="$_weft_dir/.sh-$$.state"
    _weft_file="$_weft_dir/sh-$$-\${EPOCHSECONDS:-$(date +%s)}.spool"
    _weft_sh_prompt() {
      _weft_s=$1 _weft_last= _weft_pt= _weft_pwd= _weft_n= _weft_text=
      _weft_now=\${EPOCHREALTIME:-\${EPOCHSECONDS:-}}
      [ -n "$_weft_now" ] || _weft_now=$(date +%s)
      case $_weft_now in *[!0-9]*) _weft_now=\${_weft_now%%[!0-9]*}.\${_weft_now#*[!0-9]} ;; esac
      # 2>/dev/null first: redirections apply left to right, and the state file is missing at a new shell's first prompt.
      { IFS= read -r _weft_last; IFS= read -r _weft_pt; IFS= read -r _weft_pwd; } 2>/dev/null <"$_weft_state"
      # bash's fc skips the newest entry inside a command substitution (it takes it for the fc itself).
      if [ -n "\${BASH_VERSION-}" ]; then
        HISTTIMEFORMAT= history 1 2>/dev/null >|"$_weft_state.h"
      else
        fc -l -1 2>/dev/null >|"$_weft_state.h"
      fi
      while IFS= read -r _weft_line || [ -n "$_weft_line" ]; do
        if [ -z "$_weft_n" ]; then
          _weft_line=\${_weft_line#"\${_weft_line%%[! ]*}"}
          _weft_n=\${_weft_line%%[!0-9]*}
          _weft_text=\${_weft_line#"$_weft_n"}
          _weft_text=\${_weft_text#?}
          [ -n "\${BASH_VERSION-}" ] && _weft_text=\${_weft_text#?}
        else
          _weft_text="$_weft_text
$_weft_line"
        fi
      done 2>/dev/null <"$_weft_state.h"
      : 2>/dev/null >|"$_weft_state.h"
      if [ -n "$_weft_last" ] && [ -n "$_weft_n" ] && [ "$_weft_n" != "$_weft_last" ]; then
        case $_weft_text in
        ' '* | '') ;;
        *) printf '1\\037%s\\037sh\\037%s\\037\\037%s\\037%s\\036\\n' "$_weft_pt" "$_weft_s" "$_weft_pwd" "$_weft_text" 2>/dev/null >>"$_weft_file" ;;
        esac
      fi
      printf '%s\\n%s\\n%s\\n' "\${_weft_n:-0}" "$_weft_now" "$PWD" 2>/dev/null >|"$_weft_state"
      return "$_weft_s"
    }
    PS1='$(_weft_sh_prompt "$?")'"\${PS1-\\$ }"
  fi
  ;;
esac
`;

const HOOKS: Record<ObservedShell, string> = { bash: BASH_HOOK, zsh: ZSH_HOOK, fish: FISH_HOOK, sh: SH_HOOK };

/** What each shell's hook cannot record or records only approximately (shown by `weft observe status`). */
const LIMITS: Record<ObservedShell, string> = {
  bash:
    'needs bash >= 5.0; a multi-line command is recorded as bash history keeps it (exact with `shopt -s lithist`, ' +
    'otherwise cmdhist joins lines with "; "); nothing is recorded while history is off or for lines matching ' +
    'HISTIGNORE; the hook rewrites HISTCONTROL/HISTIGNORE to emulate ignoredups (or, with erasedups, ignorespace)',
  zsh: 'the command is preexec $1 (as typed; HIST_REDUCE_BLANKS trims it); nothing is recorded if the history mechanism is off',
  fish:
    'fish 3.6 has no epoch clock: ts is /proc/uptime plus an offset measured once at start-up (about +-10 ms; ' +
    'whole seconds without /proc); nothing is recorded in private mode',
  sh:
    'POSIX sh has no command hooks: dash records nothing; bash --posix, ksh and mksh record through PS1 (one ' +
    'subshell per prompt, no duration, ts is when the previous prompt appeared); sh reads ~/.shrc only if ENV ' +
    'names it (export ENV="$HOME/.shrc" in ~/.profile)',
};

/** `s` as one word in POSIX shell syntax (bash, zsh, sh): single quotes, each `'` as `'\''`. */
function quotePosix(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/** `s` as one word in fish syntax: inside single quotes fish only unescapes `\\` and `\'`. */
function quoteFish(s: string): string {
  return `'${s.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/**
 * The self-contained block, markers included, that makes `shell` record into `spoolDir` (what installHook writes).
 *
 * @example
 * process.stdout.write(hookScript('bash', { spoolDir: '/home/me/.local/state/weft/spool' }));
 */
export function hookScript(shell: ObservedShell, opts: { spoolDir: string }): string {
  const quoted = shell === 'fish' ? quoteFish(opts.spoolDir) : quotePosix(opts.spoolDir);
  const meta = JSON.stringify({ formatVersion: SPOOL_FORMAT_VERSION, shell, spoolDir: opts.spoolDir });
  const body = HOOKS[shell].replace(DIR_PLACEHOLDER, () => quoted);
  return [
    BEGIN,
    `# Weft terminal observation: appends each interactive ${shell} command to a spool file the Weft`,
    '# daemon ingests. Managed by `weft observe install`/`uninstall`: edits inside the markers are lost.',
    `${META}${meta}`,
    body.endsWith('\n') ? body.slice(0, -1) : body,
    END,
    '',
  ].join('\n');
}

/**
 * The file a shell's hook goes into: its interactive rc file, or for fish a conf.d file of its own.
 *
 * @example
 * rcFileFor('fish', '/home/me'); // '/home/me/.config/fish/conf.d/weft-observe.fish'
 */
export function rcFileFor(shell: ObservedShell, home: string): string {
  switch (shell) {
    case 'bash':
      return join(home, '.bashrc');
    case 'zsh':
      return join(home, '.zshrc');
    case 'fish':
      return join(home, '.config', 'fish', 'conf.d', 'weft-observe.fish');
    case 'sh':
      return join(home, '.shrc');
  }
}

/** What an install or uninstall did to one rc file. */
export interface HookChange {
  shell: ObservedShell;
  rcFile: string;
  changed: boolean;
  action: 'installed' | 'updated' | 'unchanged' | 'removed' | 'absent';
}

/** A block found in a file: [start, end) covers its lines, the end marker's newline included. */
interface Block {
  start: number;
  end: number;
}

/** Every weft block in `text`, in order; a begin marker with no end marker is refused, not guessed at. */
function findBlocks(text: string, file: string): Block[] {
  const blocks: Block[] = [];
  let from = 0;
  for (;;) {
    const start = lineIndex(text, BEGIN, from);
    if (start < 0) return blocks;
    const endAt = lineIndex(text, END, start + BEGIN.length);
    if (endAt < 0) throw new Error(`${file}: "${BEGIN}" has no "${END}" after it; fix the file by hand`);
    const nl = text.indexOf('\n', endAt);
    const end = nl < 0 ? text.length : nl + 1;
    blocks.push({ start, end });
    from = end;
  }
}

/** Where a line that is exactly `line` starts, at or after `from`; -1 if there is none. */
function lineIndex(text: string, line: string, from: number): number {
  for (let i = text.indexOf(line, from); i >= 0; i = text.indexOf(line, i + 1)) {
    const atStart = i === 0 || text[i - 1] === '\n';
    const after = text[i + line.length];
    if (atStart && (after === undefined || after === '\n' || after === '\r')) return i;
  }
  return -1;
}

function readIfExists(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

/**
 * Replaces `file`'s content through a sibling temp file and a rename, so a crash never leaves a half
 * written rc file; a symlinked rc file (dotfiles repos) is written at its target, keeping the link, and
 * an existing file keeps its mode. A new file is created 0600.
 */
function writeAtomically(file: string, text: string): void {
  const target = existsSync(file) ? realpathSync(file) : file;
  mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
  const mode = existsSync(target) ? statSync(target).mode & 0o7777 : 0o600;
  const tmp = `${target}.weft-${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, target);
}

/**
 * Installs or refreshes the block in the rc file, in place if present, else appended; every other byte is kept.
 *
 * @example
 * installHook('zsh', { spoolDir: '/home/me/.local/state/weft/spool', home: '/home/me' });
 * // { shell: 'zsh', rcFile: '/home/me/.zshrc', changed: true, action: 'installed' }
 */
export function installHook(
  shell: ObservedShell,
  opts: { spoolDir: string; home: string; rcFile?: string },
): HookChange {
  const rcFile = opts.rcFile ?? rcFileFor(shell, opts.home);
  const block = hookScript(shell, { spoolDir: opts.spoolDir });
  const text = readIfExists(rcFile);
  const blocks = text === undefined ? [] : findBlocks(text, rcFile);
  let next: string;
  let action: HookChange['action'];
  if (text === undefined || blocks.length === 0) {
    const base = text ?? '';
    next = base + (base === '' || base.endsWith('\n') ? '' : '\n') + block;
    action = 'installed';
  } else {
    // The first block is replaced where it stands; any later copy (pasted twice) goes.
    next = text.slice(0, blocks[0]!.start) + block;
    let from = blocks[0]!.end;
    for (const b of blocks.slice(1)) {
      next += text.slice(from, b.start);
      from = b.end;
    }
    next += text.slice(from);
    action = next === text ? 'unchanged' : 'updated';
  }
  if (action !== 'unchanged') writeAtomically(rcFile, next);
  return { shell, rcFile, changed: action !== 'unchanged', action };
}

/**
 * Removes the block(s) from the rc file, every other byte kept; fish's own conf.d file goes once empty.
 *
 * @example
 * uninstallHook('bash', { home: '/home/me' }); // { ..., changed: true, action: 'removed' }
 */
export function uninstallHook(shell: ObservedShell, opts: { home: string; rcFile?: string }): HookChange {
  const rcFile = opts.rcFile ?? rcFileFor(shell, opts.home);
  const text = readIfExists(rcFile);
  const blocks = text === undefined ? [] : findBlocks(text, rcFile);
  if (text === undefined || blocks.length === 0) return { shell, rcFile, changed: false, action: 'absent' };
  let next = '';
  let from = 0;
  for (const b of blocks) {
    next += text.slice(from, b.start);
    from = b.end;
  }
  next += text.slice(from);
  if (next === '' && opts.rcFile === undefined && shell === 'fish') unlinkSync(rcFile);
  else writeAtomically(rcFile, next);
  return { shell, rcFile, changed: true, action: 'removed' };
}

/** Whether one shell's rc file has the block, what it writes, and what that shell's hook cannot record. */
export interface HookStatus {
  shell: ObservedShell;
  rcFile: string;
  installed: boolean;
  spoolDir?: string;
  formatVersion?: number;
  limits?: string;
  /**
   * The block is not what this Weft installs for that spool dir: written by an older (or newer)
   * Weft, or edited by hand. An older hook keeps the bugs fixed since (the sh hook before
   * 2026-12-07 printed an error at every new shell): `weft observe install --write` replaces it.
   */
  differs?: boolean;
}

/**
 * For each shell: is the block in its rc file under `home`, with which spool dir and format, and its limits.
 *
 * @example
 * for (const s of hookStatus({ home: '/home/me' })) console.log(s.shell, s.installed, s.spoolDir ?? '-');
 */
export function hookStatus(opts: { home: string }): HookStatus[] {
  return OBSERVED_SHELLS.map((shell) => {
    const rcFile = rcFileFor(shell, opts.home);
    const status: HookStatus = { shell, rcFile, installed: false, limits: LIMITS[shell] };
    const text = readIfExists(rcFile);
    const block = text === undefined ? undefined : findBlocks(text, rcFile)[0];
    if (text === undefined || block === undefined) return status;
    status.installed = true;
    const meta = text
      .slice(block.start, block.end)
      .split('\n')
      .find((l) => l.startsWith(META));
    if (meta !== undefined) {
      try {
        const parsed = JSON.parse(meta.slice(META.length)) as { spoolDir?: unknown; formatVersion?: unknown };
        if (typeof parsed.spoolDir === 'string') status.spoolDir = parsed.spoolDir;
        if (typeof parsed.formatVersion === 'number') status.formatVersion = parsed.formatVersion;
      } catch {
        // A hand-edited meta line: the block is still there, only its details are unknown.
      }
    }
    const installed = text.slice(block.start, block.end);
    status.differs = status.spoolDir === undefined || installed.replace(/\n?$/, '\n') !== hookScript(shell, { spoolDir: status.spoolDir });
    return status;
  });
}
