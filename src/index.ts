/** weft: the public face of the package. */
export * from './errors/index.js';
