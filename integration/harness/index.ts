// The harness for kiln's integration tests, in one import.
export * from './registry.js';
export * from './flaky-proxy.js';
export * from './images.js';
export { debianLayout } from './debian.js';
export { decodeClaims } from './jwt.js';
export type { LoggedRequest } from './access-log.js';
export type { TokenRequest } from './token-server.js';
export type { Credentials } from './skopeo.js';
export { runImage, type ImageRun } from './runc.js';
export { KILN, runKiln, writeContext, type KilnRun, type KilnRunOptions } from './kiln.js';
export { useBusyboxRegistry, type BusyboxRegistry } from './busybox-registry.js';
