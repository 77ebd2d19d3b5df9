/** daemon: wiring of a node's parts and their lifecycle. */
export * from './node.js';
