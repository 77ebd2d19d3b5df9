/**
 * The config's `observe.*` and `privacy.*` keys as the privacy layer's options: regexes and
 * rules compiled (a bad one fails the start naming its key), categories and levels checked,
 * and the spool directories: `observe.spool_dir` when set, and every one a `weft observe
 * install` for this data dir wrote into a hook (recorded in `<data_dir>/observe-spools.json`).
 */
import { COMMAND_CATEGORY_VALUES } from '../catalog/index.js';
import type { WeftConfig } from '../config/index.js';
import { ConfigError } from '../errors/index.js';
import type { TrustLevel } from '../mesh/index.js';
import {
  type ClassifyRuleSpec,
  type CommandCategory,
  compileRules,
  compileSecretPatterns,
  knownSpoolDirs,
  type PrivacyInit,
  PrivacyPolicy,
} from '../privacy/index.js';

function categories(key: string, list: string[]): CommandCategory[] {
  for (const c of list) {
    if (!(COMMAND_CATEGORY_VALUES as readonly string[]).includes(c)) {
      throw new ConfigError(`config key ${key}: '${c}' is not a category (${COMMAND_CATEGORY_VALUES.join(', ')})`, { key });
    }
  }
  return list as CommandCategory[];
}

/**
 * Builds the privacy layer's options from the config.
 * @example
 * const privacy = privacyFromConfig(loadConfig());
 */
export function privacyFromConfig(cfg: WeftConfig): PrivacyInit {
  const o = cfg.observe;
  const p = cfg.privacy;
  const exclude = o.exclude.map((x) => {
    try {
      return new RegExp(x);
    } catch (err) {
      throw new ConfigError(`config key observe.exclude: '${x}' is not a regular expression: ${(err as Error).message}`, { key: 'observe.exclude' });
    }
  });
  const rules = compileRules(o.rules as unknown as ClassifyRuleSpec[]);
  const secretPatterns = compileSecretPatterns(o.secret_patterns as unknown as Array<{ name: string; pattern: string }>);
  const policy = new PrivacyPolicy({
    maxLevel: p.max_level,
    defaultTrust: p.default_trust,
    nodeTrust: p.node_trust as Record<string, TrustLevel>,
    subnetTrust: p.subnet_trust as Record<string, TrustLevel>,
    allowedCategories: categories('privacy.allowed_categories', p.allowed_categories),
    deniedCategories: categories('privacy.denied_categories', p.denied_categories),
    minContributors: p.min_contributors,
    shareSummaries: p.share_summaries,
    enableMdns: cfg.mesh.enable_mdns,
  });
  // Only spools meant for this node: the one configured, and those `weft observe install` wrote
  // into a hook for this data dir. Another daemon of the same user (a test, a demo) never reads
  // a spool that was not set up for it.
  const spoolDirs = o.spool_dir ? [o.spool_dir] : [];
  return {
    policy,
    ...(o.enabled ? { observe: { spoolDirs, moreSpoolDirs: () => knownSpoolDirs(cfg.data_dir), exclude, rules, secretPatterns } } : {}),
    secretPatterns,
    queryTimeoutMs: p.query_timeout,
    queriesPerPeerPerMinute: p.queries_per_minute,
    staticPeers: cfg.mesh.peers,
  };
}
