/** delivery: notifications sent to people outside the node (Telegram), with durable per-channel state. */
export * from './channel.js';
export * from './deliveries.js';
export * from './format.js';
export * from './telegram.js';
