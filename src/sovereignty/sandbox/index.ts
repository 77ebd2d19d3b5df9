/** sandbox: runs untrusted (alpha) cartridges in isolated-vm engines inside a child process the host kills and restarts. */
export { createSandbox } from './sandbox.js';
export type { CartridgeStats, CartridgeSuspension, Sandbox, SandboxDeps, SandboxInit, SandboxStatus } from './types.js';
export { SANDBOX_EVENT_ERRORS, type SandboxEventErrorCode } from './protocol.js';
export {
  type EmittedEvent,
  type EventValidator,
  minimalEventValidator,
  type SandboxEventError,
  type SandboxEventResult,
} from './result.js';
