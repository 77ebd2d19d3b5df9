/** federation: mounts as records, the mirror and invoke organs, link health. */
export * from './budgets.js';
export * from './invoke.js';
export { cartridgeInvokeHandlers, type CartridgeHandlersDeps, type CartridgeHandlersInit, type InvokeCartridgeRegistry } from './invoke-cartridges.js';
export { INVOKE_CODES, INVOKE_MESSAGES, type InvokeCode, REFUSAL_CODES } from './invoke-wire.js';
export * from './mirror.js';
export type { OriginBatch, OriginPull } from './mirror-source.js';
export * from './mounts.js';
export type { FederationNode, OrganDeps } from './ports.js';
export * from './service.js';
