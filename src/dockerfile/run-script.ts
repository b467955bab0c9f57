/**
 * What a RUN hands to the process runner, including BuildKit's heredoc rules: `RUN <<EOF` alone
 * runs the body as the shell script (or, when the body starts with `#!`, as an executable file);
 * heredocs inside a longer command are put back as shell heredocs for the shell to read.
 */
import { parseHeredocMarker } from './heredoc.js';
import type { RunInstruction } from './types.js';

export type RunScript =
  /** Exec form: run these arguments as they are. */
  | { kind: 'exec'; args: string[] }
  /** Run `[...SHELL, script]`, `/bin/sh -c <script>` by default. */
  | { kind: 'shell'; script: string }
  /** Write `content` to a file called `name` with mode 0755 and run it through the shell by its path. */
  | { kind: 'file'; name: string; content: string };

export function runScriptOf(run: RunInstruction): RunScript {
  if (run.command.form === 'exec') return { kind: 'exec', args: run.command.args };
  const text = run.command.text;
  const [first] = run.heredocs;
  if (!first) return { kind: 'shell', script: text };

  let wholeCommandIsHeredoc: boolean;
  try {
    wholeCommandIsHeredoc = parseHeredocMarker(text) !== undefined;
  } catch {
    wholeCommandIsHeredoc = false;
  }
  if (wholeCommandIsHeredoc) {
    return first.body.startsWith('#!') ? { kind: 'file', name: first.name, content: first.body } : { kind: 'shell', script: first.body };
  }
  return { kind: 'shell', script: text + run.heredocs.map((heredoc) => `\n${heredoc.body}${heredoc.name}`).join('') };
}
