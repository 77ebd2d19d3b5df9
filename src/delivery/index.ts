/** delivery: notifications sent to people outside the node (Telegram, Discord, WhatsApp, a webhook), with durable per-channel state. */
export * from './channel.js';
export * from './deliveries.js';
export * from './discord.js';
export * from './engine.js';
export * from './format.js';
export * from './from-config.js';
export * from './problems.js';
export * from './sender.js';
export * from './telegram.js';
export * from './webhook.js';
export * from './whatsapp.js';
