import { KilnError } from '../util/errors.js';

/** Where in which Dockerfile something is. Lines are 1-based. */
export interface SourceLocation {
  file: string;
  line: number;
}

/**
 * A Dockerfile mistake: `<file>:<line>: <what is wrong>; <what to do>.` The caller writes the
 * sentence after the location, ending with a full stop.
 */
export function dockerfileError(at: SourceLocation, sentence: string, cause?: unknown): KilnError {
  return new KilnError('DOCKERFILE', `${at.file}:${at.line}: ${sentence}`, cause === undefined ? undefined : { cause });
}
