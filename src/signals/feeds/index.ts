/** signals/feeds: the feed parser, source lists (OPML, CSV, YouTube, X) and the polling fetcher. */
export * from './decode.js';
export * from './errors.js';
export * from './fetcher.js';
export * from './html-text.js';
export * from './parse.js';
export * from './schedule.js';
export * from './sources.js';
