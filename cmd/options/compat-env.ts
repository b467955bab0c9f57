import { KilnError } from '../../src/util/errors.js';

/** Go's strconv.ParseBool: the spellings kaniko accepts in its boolean environment variables. */
export function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

/**
 * The default of --no-push: KANIKO_NO_PUSH when it is set, as in kaniko. An explicit
 * --no-push or --no-push=false on the command line wins over it.
 */
export function noPushFromEnv(env: NodeJS.ProcessEnv): boolean {
  const text = env.KANIKO_NO_PUSH;
  if (text === undefined || text === '') return false;
  const value = parseGoBool(text.trim());
  if (value === undefined) {
    throw new KilnError('USAGE', `KANIKO_NO_PUSH=${text} is not a boolean; set it to true or false, or unset it.`);
  }
  return value;
}
