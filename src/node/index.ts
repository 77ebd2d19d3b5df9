/** node: one Weft node's parts (store, catalog, bus, pipeline, processor, emitter) and their lifecycle. */
export * from './node.js';
