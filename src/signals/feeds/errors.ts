import { WeftError } from '../../errors/index.js';

/** Why a body was refused as a feed; stable, for logs, `last_status` and tests. */
export type FeedParseReason =
  /** Larger than the parser's byte limit. */
  | 'too_large'
  /** Neither XML nor JSON (an empty body, plain text, a binary file). */
  | 'not_xml_or_json'
  /** XML that does not parse (unclosed tags, truncated). */
  | 'malformed_xml'
  /** JSON that does not parse. */
  | 'malformed_json'
  /** Well-formed, but no RSS, Atom, RDF or JSON Feed (an HTML page, another XML vocabulary). */
  | 'not_a_feed'
  /** Nested deeper than the parser allows. */
  | 'too_deep';

/**
 * A body that is not a feed the parser can read. The message names what was wrong; `reason`
 * says it as a stable word.
 * @example
 * try { parseFeed(bytes); } catch (err) { if (err instanceof FeedParseError) console.log(err.reason); }
 */
export class FeedParseError extends WeftError {
  readonly reason: FeedParseReason;

  constructor(
    reason: FeedParseReason,
    message: string,
    options?: { cause?: unknown; details?: Record<string, unknown> },
  ) {
    super('SIGNAL_FEED_INVALID', message, {
      cause: options?.cause,
      details: { reason, ...options?.details },
    });
    this.reason = reason;
  }
}
