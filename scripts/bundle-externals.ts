/** Packages the bundle (scripts/bundle.ts) leaves out: native addons, loaded from node_modules at run time. */
export const BUNDLE_EXTERNALS: readonly string[] = ['zstd-napi'];
