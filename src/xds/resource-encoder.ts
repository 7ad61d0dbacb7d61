// Transitional: generators import createResource from ./core/resource.js directly; this re-export goes away at integration.
export { createResource as encodeResource, contentVersion } from './core/resource.js';
