import { KilnError, type ErrorCode } from '../../util/errors.js';

/**
 * A COPY/ADD error: `<where>: <sentence>`, where the sentence says what is wrong and what to
 * do, and ends with a full stop. Without a location the sentence stands alone.
 */
export function copyError(where: string, code: ErrorCode, sentence: string, cause?: unknown): KilnError {
  const message = where === '' ? sentence.charAt(0).toUpperCase() + sentence.slice(1) : `${where}: ${sentence}`;
  return new KilnError(code, message, cause === undefined ? undefined : { cause });
}

/** Quotes a path or pattern for a message. */
export function quote(text: string): string {
  return JSON.stringify(text);
}
