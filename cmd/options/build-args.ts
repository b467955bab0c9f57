import { KilnError } from '../../src/util/errors.js';

/** `--build-arg K=V` gives K the value V; `--build-arg K` takes K's value from the environment. */
export function parseBuildArgFlags(values: readonly string[]): Map<string, string | undefined> {
  const args = new Map<string, string | undefined>();
  for (const value of values) {
    const at = value.indexOf('=');
    if (at === 0) throw new KilnError('USAGE', `--build-arg ${value}: the name before "=" is missing.`);
    if (at < 0) args.set(value, undefined);
    else args.set(value.slice(0, at), value.slice(at + 1));
  }
  return args;
}
