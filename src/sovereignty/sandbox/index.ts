/** sandbox: runs untrusted (alpha) cartridges in isolated-vm engines inside a child process the host kills and restarts. */
export {
  type CartridgeStats,
  type CartridgeSuspension,
  createSandbox,
  type Sandbox,
  type SandboxDeps,
  type SandboxInit,
  type SandboxStatus,
} from './sandbox.js';
export { SANDBOX_EVENT_ERRORS, type SandboxEventErrorCode } from './protocol.js';
export {
  type EmittedEvent,
  type EventValidator,
  minimalEventValidator,
  type SandboxEventError,
  type SandboxEventResult,
} from './result.js';
