/**
 * The shared shapes of the signal pipeline: feed items as parsed, sources as configured and
 * stored, items as ingested, clusters as formed, syntheses as produced. Field names of the
 * events' payloads follow TeleClaude's signal cartridges, so its consumers read ours.
 */

/** One entry of a feed, as the parser normalises RSS 2.0, Atom, RDF and JSON Feed. */
export interface FeedItem {
  /** `<guid>`, `<id>`, JSON Feed `id`. */
  readonly guid?: string;
  /** The item's link (absolute). */
  readonly url?: string;
  readonly title: string;
  /** Summary or description, as text (HTML removed). */
  readonly summary?: string;
  /** Full content, as text (HTML removed), when the feed has it. */
  readonly content?: string;
  /** ISO 8601, when the feed says. */
  readonly publishedAt?: string;
  readonly authors: readonly string[];
  /** Categories / tags the feed gives. */
  readonly categories: readonly string[];
}

/** A parsed feed. */
export interface ParsedFeed {
  readonly format: 'rss' | 'atom' | 'rdf' | 'json';
  readonly title?: string;
  readonly link?: string;
  readonly items: readonly FeedItem[];
}

/** What a source is: a feed URL (RSS/Atom/RDF/JSON Feed), a YouTube channel or an X account through its feed URL. */
export type SourceKind = 'feed' | 'youtube' | 'x';

/** One configured source, after OPML and CSV files were expanded. */
export interface SourceSpec {
  /** Stable id: the label when given and unique, else derived from the URL. */
  readonly id: string;
  readonly kind: SourceKind;
  /** The feed URL actually fetched (a YouTube channel id or an X handle already turned into one). */
  readonly url: string;
  readonly label: string;
  /** Tags every item of this source gets. */
  readonly tags: readonly string[];
  /** `config`, `file:<path>`, `cli`. */
  readonly origin: string;
}

/** An item ingested: the `signal.ingest.received` payload (TeleClaude's field names). */
export interface IngestPayload {
  source_id: string;
  item_url: string;
  raw_title: string;
  tags: string[];
  published_at: string;
  fetched_at: string;
  /** One-line summary (also the event's description). */
  summary: string;
  /** The dedup key that admitted it: `guid:...`, `url:...` or `hash:...`. */
  dedup_key: string;
}

/** An ingested item as clustering sees it (from the signal_items table). */
export interface SignalItem {
  readonly id: number;
  readonly sourceId: string;
  readonly eventId: string;
  readonly url: string;
  readonly title: string;
  readonly summary: string;
  readonly text: string;
  readonly tags: readonly string[];
  /** 64-bit SimHash of title + summary, as 16 hex digits. */
  readonly simhash: string;
  readonly publishedAt: number | null;
  readonly fetchedAt: number;
}

/** The `signal.cluster.formed` payload. */
export interface ClusterPayload {
  cluster_id: string;
  item_count: number;
  /** Event ids of the `signal.ingest.received` events in it. */
  event_ids: string[];
  item_urls: string[];
  source_ids: string[];
  tags: string[];
  /** A short label: the most central item's title. */
  title: string;
  burst: boolean;
  novelty: boolean;
  /** 0..1: how much the cluster is worth surfacing (sources, size, burst, novelty). */
  quality: number;
  window_start: string;
  window_end: string;
}

/** The synthesis artifact (TeleClaude's `synthesis` object). */
export interface Synthesis {
  summary: string;
  key_points: string[];
  sources: Array<{ source_id: string; url: string; title: string }>;
  /** 0..1. */
  confidence: number;
}

/** The `signal.synthesis.ready` payload. */
export interface SynthesisPayload {
  cluster_id: string;
  title: string;
  synthesis: Synthesis;
  /** `extractive` or `command:<program>`. */
  summarizer: string;
  tags: string[];
}
