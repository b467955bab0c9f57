/** kiln's Dockerfile front end: parsing, expansion, stages and .dockerignore. */
export { parseDockerfile } from './parse.js';
export type * from './types.js';
export { expandString, expandWords, expandInstruction, expandHeredocBody, EXPANDED_KINDS, type Variables, type ExpandOptions } from './expand.js';
export { resolveStages, resolveStageSource, mountSource, type BuildPlan, type ResolvedStage, type ResolveOptions, type StageBase, type StageSource } from './stages.js';
export { planStage, DEFAULT_PATH, type StageInput, type StageExit, type StagePlan, type StageStep, type StageInstruction } from './steps.js';
export { referencedArgs, unreferencedArgs } from './references.js';
export { runScriptOf, type RunScript } from './run-script.js';
export { PROXY_ARGS, PLATFORM_ARGS } from './build-args.js';
export { createIgnoreMatcher, cleanPath, type IgnoreMatcher } from './dockerignore.js';
export type { SourceLocation } from './errors.js';
