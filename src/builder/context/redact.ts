/**
 * Hides credentials written into URLs (`https://user:token@host`) wherever kiln repeats a
 * --context value or a line of git's output: logs and error messages never carry them.
 */
export function redactUrl(text: string): string {
  return text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)[^/@\s]+@/gi, '$1***@');
}
