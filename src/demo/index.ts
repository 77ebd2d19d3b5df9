/** demo: `weft demo`, three nodes in one process showing routing, a refused forgery and the sovereignty gate. */
export * from './demo.js';
