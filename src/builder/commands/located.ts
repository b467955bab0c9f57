import { KilnError, isKilnError } from '../../util/errors.js';

/** A failure inside a step (an unknown user, no such executable) with the Dockerfile line in front. */
export function atLine(err: unknown, where: string): unknown {
  if (!isKilnError(err) || err.message.startsWith(`${where}:`)) return err;
  const message = /^[A-Z][a-z]/.test(err.message) ? err.message[0]!.toLowerCase() + err.message.slice(1) : err.message;
  return new KilnError(err.code, `${where}: ${message}`, { cause: err });
}
