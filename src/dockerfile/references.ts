/**
 * Which variables an instruction's text refers to, so a cache key can leave out ARGs that
 * nothing uses. The scan is textual and errs on the side of including a name: `$NAME` and
 * `${NAME…}` count wherever they appear, also inside quotes and inside RUN text, where the
 * shell expands them.
 *
 * A RUN process also sees every ARG in scope as an environment variable, so a script it calls
 * can read an ARG that its text never mentions; a key that drops unreferenced ARGs from RUN
 * steps trades that case for more cache hits.
 */
import type { Stage } from './types.js';
import type { Instruction } from './types.js';

const REFERENCE = /\$\{?([A-Za-z_][A-Za-z0-9_]*)/g;

function textsOf(instruction: Instruction): string[] {
  switch (instruction.kind) {
    case 'from':
      return [instruction.image, instruction.platform ?? ''];
    case 'run': {
      const command = instruction.command.form === 'shell' ? [instruction.command.text] : instruction.command.args;
      return [...command, ...instruction.heredocs.map((heredoc) => heredoc.body), ...instruction.mounts];
    }
    case 'copy':
    case 'add':
      return [
        ...instruction.sources,
        instruction.dest,
        instruction.chown ?? '',
        instruction.chmod ?? '',
        ...instruction.exclude,
        ...instruction.inline.filter((heredoc) => heredoc.expand).map((heredoc) => heredoc.body),
        ...(instruction.kind === 'add' ? [instruction.checksum ?? ''] : []),
      ];
    case 'env':
    case 'label':
      return instruction.pairs.flatMap(({ key, value }) => [key, value]);
    case 'arg':
      return instruction.args.map((arg) => arg.defaultValue ?? '');
    case 'expose':
      return instruction.ports;
    case 'volume':
      return instruction.paths;
    case 'user':
      return [instruction.user];
    case 'workdir':
      return [instruction.path];
    case 'stopsignal':
      return [instruction.signal];
    // Expanded only when the container runs, or by the build that triggers them.
    case 'cmd':
    case 'entrypoint':
    case 'shell':
    case 'healthcheck':
    case 'onbuild':
    case 'maintainer':
      return [];
  }
}

/** The variable names an instruction's text refers to. */
export function referencedArgs(instruction: Instruction): Set<string> {
  const names = new Set<string>();
  for (const text of textsOf(instruction)) {
    for (const match of text.matchAll(REFERENCE)) names.add(match[1]!);
  }
  return names;
}

/** ARGs a stage declares that none of its instructions refers to. */
export function unreferencedArgs(stage: Stage): Set<string> {
  const declared = new Set<string>();
  const used = new Set<string>();
  for (const instruction of stage.instructions) {
    if (instruction.kind === 'arg') for (const arg of instruction.args) declared.add(arg.name);
    for (const name of referencedArgs(instruction)) used.add(name);
  }
  return new Set([...declared].filter((name) => !used.has(name)));
}
