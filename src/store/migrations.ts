/**
 * Schema migrations, applied in order by `PRAGMA user_version`. Append new steps; never edit a
 * shipped one. Other modules (replay guard, audit, outbox, ...) add their tables here too.
 */
export const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: 'core: local log, offsets, dedup, notifications, dead letters, quarantine, stats',
    sql: `
      CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        event TEXT NOT NULL,
        timestamp TEXT NOT NULL,
        source TEXT NOT NULL,
        causation_id TEXT,
        correlation_id TEXT,
        direct INTEGER NOT NULL DEFAULT 0,
        body TEXT NOT NULL
      );
      CREATE INDEX events_causation ON events(causation_id) WHERE causation_id IS NOT NULL;
      CREATE INDEX events_correlation ON events(correlation_id) WHERE correlation_id IS NOT NULL;

      CREATE TABLE consumer_offsets (
        name TEXT PRIMARY KEY,
        position TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );

      CREATE TABLE dedup_keys (
        key TEXT PRIMARY KEY,
        event_id TEXT NOT NULL,
        seen_at INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE notifications (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        level INTEGER NOT NULL,
        domain TEXT NOT NULL,
        visibility TEXT NOT NULL,
        entity TEXT,
        source TEXT NOT NULL,
        source_computer TEXT,
        description TEXT NOT NULL,
        payload TEXT NOT NULL,
        idempotency_key TEXT UNIQUE,
        group_key TEXT,
        actionable INTEGER NOT NULL DEFAULT 0,
        human_status TEXT NOT NULL DEFAULT 'unseen',
        agent_status TEXT NOT NULL DEFAULT 'none',
        agent_id TEXT,
        resolution TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        seen_at TEXT,
        claimed_at TEXT,
        resolved_at TEXT
      );
      CREATE INDEX notifications_open_group ON notifications(group_key, id) WHERE group_key IS NOT NULL AND agent_status != 'resolved';
      CREATE INDEX notifications_human ON notifications(human_status, id);
      CREATE INDEX notifications_agent ON notifications(agent_status, id);

      CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        cartridge TEXT NOT NULL,
        error TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at TEXT NOT NULL
      );

      CREATE TABLE quarantine (
        id INTEGER PRIMARY KEY,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        flags TEXT NOT NULL DEFAULT '[]',
        body TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'held',
        created_at TEXT NOT NULL,
        decided_at TEXT
      );
      CREATE INDEX quarantine_status ON quarantine(status, id);

      CREATE TABLE cartridge_stats (
        cartridge_name TEXT PRIMARY KEY,
        invocation_count INTEGER NOT NULL DEFAULT 0,
        last_invoked_at TEXT
      );

      CREATE TABLE rejected_entries (
        id INTEGER PRIMARY KEY,
        origin TEXT NOT NULL,
        ref TEXT NOT NULL,
        reason TEXT NOT NULL,
        raw TEXT NOT NULL,
        created_at TEXT NOT NULL
      );

      -- Redis mode: every emitted event is journaled here until the processor has applied it,
      -- so a Redis restart (which keeps nothing) cannot lose an accepted event.
      CREATE TABLE emit_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        envelope_id TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL,
        sent_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 3,
    name: 'delivery: outgoing notification deliveries per channel (telegram)',
    sql: `
      CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY,
        notification_id INTEGER NOT NULL,
        change_kind TEXT NOT NULL,
        version TEXT NOT NULL,
        channel TEXT NOT NULL,
        level INTEGER NOT NULL,
        text TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        next_attempt_at INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        sent_at INTEGER,
        UNIQUE (channel, notification_id, change_kind, version)
      );
      CREATE INDEX deliveries_due ON deliveries(channel, next_attempt_at, id) WHERE status = 'pending';
    `,
  },
  {
    version: 2,
    name: 'system cartridges: peer trust scores, trust outcome counts, entity history, correlation windows',
    sql: `
      CREATE TABLE trust_scores (
        peer TEXT PRIMARY KEY,
        penalty REAL NOT NULL DEFAULT 0,
        clean INTEGER NOT NULL DEFAULT 0,
        offenses INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
      );

      CREATE TABLE trust_outcomes (
        peer TEXT NOT NULL,
        source TEXT NOT NULL,
        outcome TEXT NOT NULL,
        reason TEXT NOT NULL,
        count INTEGER NOT NULL,
        last_at INTEGER NOT NULL,
        PRIMARY KEY (peer, source, outcome, reason)
      ) WITHOUT ROWID;

      CREATE TABLE entity_history (
        entity TEXT PRIMARY KEY,
        events INTEGER NOT NULL DEFAULT 0,
        failures INTEGER NOT NULL DEFAULT 0,
        successes INTEGER NOT NULL DEFAULT 0,
        streak INTEGER NOT NULL DEFAULT 0,
        first_seen_at TEXT NOT NULL,
        last_event_at TEXT NOT NULL,
        last_event_type TEXT NOT NULL,
        last_failure_at TEXT,
        last_success_at TEXT,
        touched INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX entity_history_touched ON entity_history(touched);

      CREATE TABLE correlation_counts (
        key TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (key, bucket)
      ) WITHOUT ROWID;
      CREATE INDEX correlation_counts_bucket ON correlation_counts(bucket);

      CREATE TABLE correlation_failures (
        entity TEXT NOT NULL,
        computer TEXT NOT NULL,
        first_at INTEGER NOT NULL,
        last_at INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (entity, computer)
      ) WITHOUT ROWID;
      CREATE INDEX correlation_failures_last ON correlation_failures(last_at);

      CREATE TABLE correlation_fired (
        pattern TEXT NOT NULL,
        key TEXT NOT NULL,
        fired_at INTEGER NOT NULL,
        quiet_until INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        PRIMARY KEY (pattern, key)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 5,
    name: 'mesh: per-peer outbox and sender state',
    sql: `
      CREATE TABLE mesh_outbox (
        -- AUTOINCREMENT: ids are never reused, so a sender's cursor never skips a new row
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        peer TEXT NOT NULL,
        envelope_id TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (peer, envelope_id)
      );
      CREATE INDEX mesh_outbox_peer ON mesh_outbox(peer, id);
      CREATE TABLE mesh_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `,
  },
  {
    version: 4,
    name: 'sovereignty: installed cartridges (status, origin, manifest, source digest)',
    sql: `
      CREATE TABLE cartridges (
        name TEXT PRIMARY KEY,
        version TEXT NOT NULL,
        author TEXT NOT NULL,
        description TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending_activation', 'active', 'rejected', 'alpha', 'suspended')),
        origin TEXT NOT NULL,
        manifest TEXT NOT NULL,
        source_sha256 TEXT NOT NULL,
        source_bytes INTEGER NOT NULL,
        status_reason TEXT,
        installed_at TEXT NOT NULL,
        activated_at TEXT,
        updated_at TEXT NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX cartridges_status ON cartridges(status);
    `,
  },
  {
    version: 6,
    name: 'one name per concept: the Redis-mode emit journal; refusals name their field, count repeats and are listed',
    sql: `
      ALTER TABLE emit_outbox RENAME TO emit_journal;

      ALTER TABLE rejected_entries ADD COLUMN field TEXT;
      ALTER TABLE rejected_entries ADD COLUMN code TEXT NOT NULL DEFAULT 'ENTRY_INVALID';
      ALTER TABLE rejected_entries ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
      ALTER TABLE rejected_entries ADD COLUMN last_at TEXT;
      -- The same input seen again (a pending entry re-read after a restart) counts, not repeats.
      UPDATE rejected_entries SET ref = ref || '#' || id
        WHERE id NOT IN (SELECT MIN(id) FROM rejected_entries GROUP BY origin, ref);
      CREATE UNIQUE INDEX rejected_entries_origin_ref ON rejected_entries (origin, ref);
    `,
  },
  {
    version: 7,
    name: 'privacy: observed commands (no command text), spool read positions, summaries, peers\' summaries, trust set at run time',
    sql: `
      -- What summaries and queries need of each observed command; the (redacted) text stays in the event log only.
      CREATE TABLE terminal_commands (
        event_id TEXT PRIMARY KEY,
        ts INTEGER NOT NULL,
        shell TEXT NOT NULL,
        category TEXT NOT NULL,
        risk_level TEXT NOT NULL,
        exit_code INTEGER,
        duration_ms INTEGER,
        pattern TEXT NOT NULL,
        caro_generated INTEGER NOT NULL DEFAULT 0,
        user_confirmed INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;
      CREATE INDEX terminal_commands_ts ON terminal_commands(ts);

      CREATE TABLE spool_positions (
        file TEXT PRIMARY KEY,
        ino INTEGER NOT NULL,
        position INTEGER NOT NULL,
        records INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE summaries (
        id TEXT PRIMARY KEY,
        granularity TEXT NOT NULL,
        period_start TEXT NOT NULL,
        period_end TEXT NOT NULL,
        body TEXT NOT NULL,
        generated_at INTEGER NOT NULL,
        shared_at INTEGER,
        UNIQUE (granularity, period_start)
      ) WITHOUT ROWID;

      CREATE TABLE peer_summaries (
        id TEXT PRIMARY KEY,
        peer TEXT NOT NULL,
        node_id TEXT NOT NULL,
        granularity TEXT NOT NULL,
        period_start TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX peer_summaries_peer ON peer_summaries(peer, period_start);

      CREATE TABLE trust_settings (
        peer TEXT PRIMARY KEY,
        level TEXT NOT NULL,
        set_at INTEGER NOT NULL,
        reason TEXT
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 8,
    name: 'privacy: a trust level set at run time names the key it was set for',
    sql: `
      ALTER TABLE trust_settings ADD COLUMN node_id TEXT;
    `,
  },
  {
    version: 9,
    name: 'domains: the inbox of the domain pipelines, members with roles and tokens, the autonomy matrix',
    sql: `
      CREATE TABLE domain_inbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        targets TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );

      CREATE TABLE members (
        name TEXT PRIMARY KEY,
        display_name TEXT,
        created_at INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE member_roles (
        member TEXT NOT NULL,
        domain TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
        granted_at INTEGER NOT NULL,
        PRIMARY KEY (member, domain)
      ) WITHOUT ROWID;

      CREATE TABLE member_tokens (
        digest TEXT PRIMARY KEY,
        member TEXT NOT NULL,
        label TEXT,
        created_at INTEGER NOT NULL,
        last_used_at INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX member_tokens_member ON member_tokens(member);

      CREATE TABLE autonomy_rules (
        domain TEXT NOT NULL DEFAULT '*',
        cartridge TEXT NOT NULL DEFAULT '*',
        event_type TEXT NOT NULL DEFAULT '*',
        level TEXT NOT NULL CHECK (level IN ('L1', 'L2', 'L3')),
        set_at INTEGER NOT NULL,
        set_by TEXT,
        PRIMARY KEY (domain, cartridge, event_type)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 10,
    name: 'signals: sources with their polling state, ingested items with their dedup keys, clusters',
    sql: `
      CREATE TABLE signal_sources (
        id TEXT PRIMARY KEY,
        url TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        label TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '[]',
        origin TEXT NOT NULL,
        etag TEXT,
        last_modified TEXT,
        interval_s INTEGER NOT NULL,
        next_poll_at INTEGER NOT NULL,
        retry_after_until INTEGER,
        parse_errors INTEGER NOT NULL DEFAULT 0,
        fetch_errors INTEGER NOT NULL DEFAULT 0,
        disabled_reason TEXT,
        last_polled_at INTEGER,
        last_status TEXT,
        last_new_items INTEGER NOT NULL DEFAULT 0,
        items_seen INTEGER NOT NULL DEFAULT 0,
        baseline_per_hour REAL,
        updated_at INTEGER NOT NULL
      ) WITHOUT ROWID;

      CREATE TABLE signal_items (
        id INTEGER PRIMARY KEY,
        source_id TEXT NOT NULL,
        guid_key TEXT UNIQUE,
        url_key TEXT UNIQUE,
        content_hash TEXT NOT NULL,
        event_id TEXT NOT NULL,
        url TEXT NOT NULL,
        title TEXT NOT NULL,
        summary TEXT NOT NULL,
        text TEXT NOT NULL,
        tags TEXT NOT NULL,
        simhash TEXT NOT NULL,
        published_at INTEGER,
        fetched_at INTEGER NOT NULL,
        cluster_id TEXT
      );
      CREATE INDEX signal_items_hash ON signal_items(content_hash);
      CREATE INDEX signal_items_unclustered ON signal_items(fetched_at) WHERE cluster_id IS NULL;
      CREATE INDEX signal_items_source ON signal_items(source_id, fetched_at);
      CREATE INDEX signal_items_cluster ON signal_items(cluster_id) WHERE cluster_id IS NOT NULL;

      CREATE TABLE signal_clusters (
        id TEXT PRIMARY KEY,
        formed_at INTEGER NOT NULL,
        item_count INTEGER NOT NULL,
        title TEXT NOT NULL,
        tags TEXT NOT NULL,
        burst INTEGER NOT NULL,
        novelty INTEGER NOT NULL,
        quality REAL NOT NULL,
        event_id TEXT,
        synthesized_at INTEGER,
        synthesis_event_id TEXT
      ) WITHOUT ROWID;
      CREATE INDEX signal_clusters_formed ON signal_clusters(formed_at);
    `,
  },
];
