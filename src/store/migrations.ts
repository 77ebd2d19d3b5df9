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
  {
    version: 11,
    name: 'federation: mounts (link, mirror, invoke) with caps, serializer policy, resume token and telemetry; peers\' link keys; discovered candidates; the log\'s prune mark',
    sql: `
      CREATE TABLE mounts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        peer TEXT NOT NULL,
        mode TEXT NOT NULL CHECK (mode IN ('link', 'mirror', 'invoke')),
        name TEXT NOT NULL,
        caps_required TEXT NOT NULL DEFAULT '[]',
        caps_preferred TEXT NOT NULL DEFAULT '[]',
        upd_latest INTEGER NOT NULL DEFAULT 0,
        -- negotiated: {"crc32c_ok","deflate_ok","aead_ok","warn_down","cmp_max_ver"}
        serializer TEXT NOT NULL DEFAULT '{}',
        provider TEXT,
        prov_caps TEXT NOT NULL DEFAULT '[]',
        -- per mode: mirror {"stream","beat_window","max_in_flight"}
        options TEXT NOT NULL DEFAULT '{}',
        state TEXT NOT NULL DEFAULT 'open',
        error TEXT,
        -- mirror: the last source sequence applied here (committed with the applied events)
        resume_token INTEGER NOT NULL DEFAULT 0,
        telemetry TEXT NOT NULL DEFAULT '{}',
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        closed_at INTEGER,
        UNIQUE (peer, mode, name)
      );
      CREATE TABLE peer_link_keys (
        node_id TEXT PRIMARY KEY,
        computer TEXT NOT NULL,
        x25519 BLOB NOT NULL,
        caps TEXT NOT NULL DEFAULT '[]',
        updated_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE peer_candidates (
        fingerprint TEXT PRIMARY KEY,
        node_id TEXT NOT NULL,
        computer TEXT NOT NULL,
        cluster TEXT,
        addresses TEXT NOT NULL DEFAULT '[]',
        via TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'candidate' CHECK (state IN ('candidate', 'pinned', 'admitted', 'ignored')),
        first_seen INTEGER NOT NULL,
        last_seen INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE log_marks (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 12,
    name: 'session lineage: which session spawned which, from the events that reached this node; refused parent claims; counters',
    sql: `
      -- One row per session seen in an event's session or parentSession. first_seen/last_seen
      -- are event timestamps (ms), NULL for a session known only as a parent; the parent is set
      -- once and never rewritten (session-lineage.ts).
      CREATE TABLE sessions (
        session TEXT PRIMARY KEY,
        parent TEXT,
        parent_event TEXT,
        first_seen INTEGER,
        last_seen INTEGER,
        computer TEXT,
        node TEXT,
        events INTEGER NOT NULL DEFAULT 0,
        indexed_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX sessions_parent ON sessions(parent) WHERE parent IS NOT NULL;
      CREATE INDEX sessions_roots ON sessions(last_seen) WHERE parent IS NULL;
      CREATE INDEX sessions_last_seen ON sessions(last_seen);
      -- Parent claims not taken: another parent was set first (conflict), the claim would close
      -- a loop (cycle) or make the chain too deep (depth). Bounded per session by the code.
      CREATE TABLE session_claims (
        session TEXT NOT NULL,
        parent TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('conflict', 'cycle', 'depth')),
        count INTEGER NOT NULL DEFAULT 1,
        event_id TEXT NOT NULL,
        computer TEXT,
        node TEXT,
        first_at INTEGER NOT NULL,
        last_at INTEGER NOT NULL,
        PRIMARY KEY (session, parent, kind)
      ) WITHOUT ROWID;
      CREATE TABLE session_counters (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL
      ) WITHOUT ROWID;
      INSERT INTO session_counters (key, value) VALUES ('sessions', 0), ('refused', 0), ('claims_dropped', 0);
      CREATE TRIGGER sessions_counted AFTER INSERT ON sessions BEGIN
        UPDATE session_counters SET value = value + 1 WHERE key = 'sessions';
      END;
      CREATE TRIGGER sessions_uncounted AFTER DELETE ON sessions BEGIN
        UPDATE session_counters SET value = value - 1 WHERE key = 'sessions';
      END;
    `,
  },
  {
    version: 13,
    name: 'recovery: beacons kept per node, an index of cluster events by origin with their hashes, peers\' reported holdings, the notification journal\'s dirty marks, cartridges journaled, the restore\'s staging',
    sql: `
      -- Small facts of the recovery organ (its mode, the index cursor, ...).
      CREATE TABLE recovery_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) WITHOUT ROWID;
      -- The latest mesh.recovery.beacon of each node (this one too), as its envelope's JSON.
      CREATE TABLE recovery_beacons (
        node TEXT PRIMARY KEY,
        computer TEXT NOT NULL,
        event_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        body TEXT NOT NULL,
        received_at INTEGER NOT NULL
      ) WITHOUT ROWID;
      -- Every cluster or public event in the log by the node that originated it, with the hash
      -- of its content (provenance and pipeline annotations left out), so this node can say what
      -- it holds of any node, range by range, without reading the log again.
      CREATE TABLE recovery_index (
        node TEXT NOT NULL,
        id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (node, id)
      ) WITHOUT ROWID;
      -- What each peer said it holds of this node's events, per range of this node's beacon.
      CREATE TABLE recovery_holdings (
        peer TEXT PRIMARY KEY,
        computer TEXT NOT NULL,
        beacon_id TEXT NOT NULL,
        ranges TEXT NOT NULL,
        tail INTEGER NOT NULL DEFAULT 0,
        at INTEGER NOT NULL
      ) WITHOUT ROWID;
      -- Notifications whose state changed since the journal last recorded it (cluster and
      -- public ones: what their events' peers may know of).
      CREATE TABLE recovery_notes_dirty (id INTEGER PRIMARY KEY);
      CREATE TRIGGER recovery_notes_inserted AFTER INSERT ON notifications WHEN NEW.visibility IN ('cluster', 'public') BEGIN
        INSERT OR IGNORE INTO recovery_notes_dirty (id) VALUES (NEW.id);
      END;
      CREATE TRIGGER recovery_notes_updated AFTER UPDATE ON notifications WHEN NEW.visibility IN ('cluster', 'public') BEGIN
        INSERT OR IGNORE INTO recovery_notes_dirty (id) VALUES (NEW.id);
      END;
      INSERT INTO recovery_notes_dirty (id) SELECT id FROM notifications WHERE visibility IN ('cluster', 'public');
      -- Cartridge packages journaled to the cluster (mesh.recovery.cartridge), by source digest.
      CREATE TABLE recovery_cartridges_sent (
        name TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (name, sha256)
      ) WITHOUT ROWID;
      -- A restore's events as pulled from peers, checked range by range before they enter the log.
      CREATE TABLE recovery_staging (
        id TEXT PRIMARY KEY,
        peer TEXT NOT NULL,
        range INTEGER NOT NULL,
        event TEXT NOT NULL,
        body TEXT NOT NULL,
        hash BLOB NOT NULL
      ) WITHOUT ROWID;
      CREATE INDEX recovery_staging_range ON recovery_staging (range, id);
      -- Restored notifications: their original id and the id they have here (another when the
      -- new node had given theirs away already).
      CREATE TABLE recovery_notes_moved (
        orig_id INTEGER PRIMARY KEY,
        id INTEGER NOT NULL
      );
      -- events.direct = 2 marks an event restored from peers (weft recovery restore): this node
      -- originated it, and the bus never delivers it again (it reads direct = 0 only).
    `,
  },
  {
    version: 14,
    name: 'log: ids of pruned events kept as the exactly-once key; log rows the pipeline did not pass (never served to a mirror)',
    sql: `
      -- The id of every event pruned from the log (weft events prune), written in the deleting
      -- transaction: the envelope id stays this node's exactly-once key, so an event that comes
      -- again (a new mirror from token 0, a push repeated) is a duplicate, not a new event.
      -- About 40 bytes an id; never pruned itself.
      CREATE TABLE pruned_ids (id TEXT PRIMARY KEY) WITHOUT ROWID;
      -- Log rows of this node's own events that the pipeline did not pass (a stage dropped it:
      -- trust rejected or quarantined it, dedup, a cartridge; or a cartridge failed on it),
      -- written in the batch transaction that decided it. Push never sent them, so a mirror of
      -- this node is never served them either. A quarantine release that passes removes its row;
      -- a prune removes the rows below its mark.
      CREATE TABLE events_withheld (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL
      );
    `,
  },
  {
    version: 15,
    name: 'git fallback: what was imported from each node\'s ref and what was written for each peer',
    sql: `
      -- The last commit of a node's ref (refs/weft/<computer> on the fallback remote) whose
      -- frames were applied here; written in the transaction that applied them.
      CREATE TABLE fallback_imported (
        ref TEXT PRIMARY KEY,
        commit_id TEXT NOT NULL,
        commits INTEGER NOT NULL DEFAULT 0,
        frames INTEGER NOT NULL DEFAULT 0,
        refused INTEGER NOT NULL DEFAULT 0,
        at INTEGER NOT NULL
      );
      -- Per peer: the last outbox row written to the fallback remote (rows after it go next),
      -- the commit that carried it, and since when the peer is in fallback.
      CREATE TABLE fallback_sent (
        peer TEXT PRIMARY KEY,
        outbox_id INTEGER NOT NULL,
        commit_id TEXT NOT NULL,
        events INTEGER NOT NULL DEFAULT 0,
        since INTEGER NOT NULL,
        at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 16,
    name: 'log: an index of the embedded bus\'s own rows, so reading the bus costs the same with a million rows applied directly (peers\' events, emits applied at once) after its position',
    sql: `
      -- The bus reads "rows after my position with direct = 0", and asks for the newest such
      -- row. Without this index both walk every row after the position: on a node whose peers
      -- sent a million events since its last own one, each poll of the bus read them all.
      CREATE INDEX events_bus ON events(seq) WHERE direct = 0;
    `,
  },
  {
    version: 17,
    name: 'mesh: one stored body per event sent to several peers (the outbox rows of each peer point to it)',
    sql: `
      -- An event for several peers is stored once here, with the number of outbox rows that
      -- point to it; each of those rows has an empty body. The last acknowledgement deletes it.
      -- (An event for one peer keeps its body in its outbox row, as before.)
      CREATE TABLE mesh_bodies (
        envelope_id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        refs INTEGER NOT NULL
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 18,
    name: 'recovery: a notification\'s journal mark counts its changes, so the journal clears a mark with one statement (no re-read of the row); only this node\'s own notifications are marked; moved notifications found by their new id',
    sql: `
      -- v moves on every change of a marked row; the journal deletes the mark only if v is
      -- still the one it journaled (a change since keeps the mark for the next pass).
      ALTER TABLE recovery_notes_dirty ADD COLUMN v INTEGER NOT NULL DEFAULT 0;
      DROP TRIGGER recovery_notes_inserted;
      DROP TRIGGER recovery_notes_updated;
      -- Only this node's own notifications are journaled (another node journals its own), so
      -- only they are marked: recovery_state 'computer' names this node (set at every start;
      -- until it is, every row is marked, as before).
      CREATE TRIGGER recovery_notes_inserted AFTER INSERT ON notifications
        WHEN NEW.visibility IN ('cluster', 'public')
          AND (NEW.source_computer IS NULL OR NEW.source_computer = COALESCE((SELECT value FROM recovery_state WHERE key = 'computer'), NEW.source_computer)) BEGIN
        INSERT INTO recovery_notes_dirty (id) VALUES (NEW.id) ON CONFLICT (id) DO UPDATE SET v = v + 1;
      END;
      CREATE TRIGGER recovery_notes_updated AFTER UPDATE ON notifications
        WHEN NEW.visibility IN ('cluster', 'public')
          AND (NEW.source_computer IS NULL OR NEW.source_computer = COALESCE((SELECT value FROM recovery_state WHERE key = 'computer'), NEW.source_computer)) BEGIN
        INSERT INTO recovery_notes_dirty (id) VALUES (NEW.id) ON CONFLICT (id) DO UPDATE SET v = v + 1;
      END;
      -- The journal asks, for every row it journals, whether a restore gave it a new id: without
      -- this index each question read the whole table (a restored node's journal was quadratic).
      CREATE INDEX recovery_notes_moved_id ON recovery_notes_moved(id);
    `,
  },
  {
    version: 19,
    name: 'recovery: a new notification is marked for the journal by the insert that creates it (NotificationStore), not by a trigger',
    sql: `
      -- A row trigger runs as a program of its own for every row inserted, whatever its WHEN
      -- says: 2-2.5 us of each notification's 8-10 us insert, on every node, for every event
      -- that becomes a notification, most of them never marked (another node's, or local).
      -- NotificationStore.createFromEvent marks the rows the trigger marked (same condition),
      -- and a restore marks a notification it had to give another id. Changes to existing rows
      -- are still marked by recovery_notes_updated.
      DROP TRIGGER IF EXISTS recovery_notes_inserted;
    `,
  },
  {
    version: 20,
    name: 'Redis bus: an emit may be applied in the commit that journals it; the journal row then only waits to go on the stream',
    sql: `
      -- applied = 1: the pipeline applied this event in the transaction that journaled it (the
      -- pipeline was caught up); the row stays only until the event is on the stream, for the
      -- stream's other readers, and a copy read back is skipped. applied = 0: waiting for the
      -- pipeline, which reads it from the stream, as before.
      ALTER TABLE emit_journal ADD COLUMN applied INTEGER NOT NULL DEFAULT 0;
      CREATE INDEX emit_journal_waiting ON emit_journal(seq) WHERE applied = 0;
    `,
  },
  {
    version: 21,
    name: 'signals: a budget of new items per source and day, and a source whose every item is new poll after poll flagged',
    sql: `
      -- new_today counts the new items admitted since budget_since (a rolling day); a source
      -- past signals.max_new_per_day waits for the day's end. all_new_polls counts polls in a
      -- row on which every item was new; flagged_at is when that reached signals.flood_polls
      -- (NULL: not flagged), budget_spent_at when the day's budget ran out (NULL: it did not).
      ALTER TABLE signal_sources ADD COLUMN budget_since INTEGER;
      ALTER TABLE signal_sources ADD COLUMN new_today INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE signal_sources ADD COLUMN all_new_polls INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE signal_sources ADD COLUMN flagged_at INTEGER;
      ALTER TABLE signal_sources ADD COLUMN budget_spent_at INTEGER;
    `,
  },
  {
    version: 22,
    name: 'cartridges: failures counted per installed cartridge (weft cartridges list)',
    sql: `
      -- A sandboxed cartridge failing on an event lets the event pass unchanged (a dead letter
      -- keeps it, and dead letters are capped): this count is what stays, per cartridge, since
      -- its code was installed.
      CREATE TABLE cartridge_failures (
        cartridge_name TEXT PRIMARY KEY,
        failure_count INTEGER NOT NULL,
        last_failed_at TEXT NOT NULL,
        last_error TEXT NOT NULL
      );
    `,
  },
  {
    version: 23,
    name: 'signals: many items may share one link (an item with a GUID is known by it alone)',
    sql: `
      -- url_key was UNIQUE: the second update of an incident (its own GUID, the incident's one
      -- link) was never recorded. SQLite cannot drop a constraint, so the table is rebuilt.
      CREATE TABLE signal_items_v23 (
        id INTEGER PRIMARY KEY,
        source_id TEXT NOT NULL,
        guid_key TEXT UNIQUE,
        url_key TEXT,
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
      INSERT INTO signal_items_v23 (id, source_id, guid_key, url_key, content_hash, event_id, url, title, summary, text, tags, simhash, published_at, fetched_at, cluster_id)
        SELECT id, source_id, guid_key, url_key, content_hash, event_id, url, title, summary, text, tags, simhash, published_at, fetched_at, cluster_id FROM signal_items;
      DROP TABLE signal_items;
      ALTER TABLE signal_items_v23 RENAME TO signal_items;
      CREATE INDEX signal_items_url ON signal_items(url_key) WHERE url_key IS NOT NULL;
      CREATE INDEX signal_items_hash ON signal_items(content_hash);
      CREATE INDEX signal_items_unclustered ON signal_items(fetched_at) WHERE cluster_id IS NULL;
      CREATE INDEX signal_items_source ON signal_items(source_id, fetched_at);
      CREATE INDEX signal_items_cluster ON signal_items(cluster_id) WHERE cluster_id IS NOT NULL;
    `,
  },
  {
    version: 24,
    name: 'session lineage: each session\'s height (levels of sessions below it), so a parent claim is refused when it would make a chain too deep below the session too',
    sql: `
      -- height: the longest chain of descendants below the session (0 for a leaf). Before it,
      -- a session that already had children could take a parent and push them past the
      -- depth bound. Filled here from the parents stored so far (bounded walk).
      ALTER TABLE sessions ADD COLUMN height INTEGER NOT NULL DEFAULT 0;
      CREATE TEMP TABLE session_heights_v24 (session TEXT PRIMARY KEY, height INTEGER NOT NULL) WITHOUT ROWID;
      INSERT INTO session_heights_v24 (session, height)
        WITH RECURSIVE up(session, dist) AS (
          SELECT parent, 1 FROM sessions WHERE parent IS NOT NULL
          UNION
          SELECT s.parent, up.dist + 1 FROM up JOIN sessions s ON s.session = up.session WHERE s.parent IS NOT NULL AND up.dist < 1024
        )
        SELECT session, max(dist) FROM up GROUP BY session;
      UPDATE sessions SET height = (SELECT h.height FROM session_heights_v24 h WHERE h.session = sessions.session)
        WHERE session IN (SELECT session FROM session_heights_v24);
      DROP TABLE session_heights_v24;
    `,
  },
  {
    version: 25,
    name: 'git fallback: the acks owed to each peer, kept until a push carries them',
    sql: `
      -- An ack frame for events a peer's commit brought, to go back in this node's next commit.
      -- Held in memory only, a restart before the push lost them: the sender's outbox then
      -- waited for the link although its events had crossed. At most 4,096 per peer.
      CREATE TABLE fallback_acks (
        id INTEGER PRIMARY KEY,
        peer TEXT NOT NULL,
        frame BLOB NOT NULL
      );
    `,
  },
  {
    version: 26,
    name: 'domains: the inbox of a database made before its positions never repeated (migration 9 as shipped on 2026-12-04) gets them too; the recovery journal\'s trigger and index as migration 18 makes them now',
    sql: `
      -- Migration 9 first shipped with seq INTEGER PRIMARY KEY (no AUTOINCREMENT) and was then
      -- changed in place, so a database made by that build kept the old table: once the
      -- clean-up emptied the inbox, new rows took positions from 1 again, at or below where the
      -- lanes had got to, and the lanes never read them (domain events silently lost). The
      -- table is made again with AUTOINCREMENT, its counter past every position used: the
      -- highest row, the old counter (a database made after the fix) and every lane's position.
      CREATE TABLE domain_inbox_v26 (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL,
        event_type TEXT NOT NULL,
        targets TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      INSERT INTO domain_inbox_v26 (seq, event_id, event_type, targets, body, created_at)
        SELECT seq, event_id, event_type, targets, body, created_at FROM domain_inbox;
      DELETE FROM sqlite_sequence WHERE name = 'domain_inbox_v26';
      INSERT INTO sqlite_sequence (name, seq) SELECT 'domain_inbox_v26', max(
        coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'domain_inbox'), 0),
        coalesce((SELECT max(seq) FROM domain_inbox), 0),
        coalesce((SELECT max(CAST(position AS INTEGER)) FROM consumer_offsets WHERE name LIKE 'domains:%'), 0));
      DROP TABLE domain_inbox;
      ALTER TABLE domain_inbox_v26 RENAME TO domain_inbox;

      -- Migration 18 was edited in place as well: a database made by the builds of 2026-12-06
      -- 01:51 to 03:18 kept a trigger that marks every node's notifications for the recovery
      -- journal (not only this node's), and no index for the journal's question about moved
      -- ids. Both are made as migration 18 makes them now.
      DROP TRIGGER IF EXISTS recovery_notes_updated;
      CREATE TRIGGER recovery_notes_updated AFTER UPDATE ON notifications
        WHEN NEW.visibility IN ('cluster', 'public')
          AND (NEW.source_computer IS NULL OR NEW.source_computer = COALESCE((SELECT value FROM recovery_state WHERE key = 'computer'), NEW.source_computer)) BEGIN
        INSERT INTO recovery_notes_dirty (id) VALUES (NEW.id) ON CONFLICT (id) DO UPDATE SET v = v + 1;
      END;
      CREATE INDEX IF NOT EXISTS recovery_notes_moved_id ON recovery_notes_moved(id);
    `,
  },
];
