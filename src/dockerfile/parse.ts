/**
 * parseDockerfile: Dockerfile text to typed instructions grouped into stages.
 *
 * kiln reads the text with its own port of BuildKit's line scanner rather than with
 * dockerfile-ast: dockerfile-ast takes `echo foo \\` (an escaped backslash) as a line
 * continuation and swallows the next instruction, opens heredocs inside JSON-form RUN, accepts
 * unterminated heredocs silently and honours `# escape=` after an unknown directive — each of
 * which would make kiln build something other than what `docker build` builds.
 */
import { dockerfileError } from './errors.js';
import { buildInstruction } from './instructions.js';
import { scanDockerfile } from './lines.js';
import type { ArgInstruction, Dockerfile, Instruction, Stage } from './types.js';

export function parseDockerfile(text: string, file: string): Dockerfile {
  const scanned = scanDockerfile(text, file);
  const globalArgs: ArgInstruction[] = [];
  const stages: Stage[] = [];

  for (const line of scanned.lines) {
    const instruction: Instruction = buildInstruction(line, file, scanned.escape);
    if (instruction.kind === 'from') {
      const stage: Stage = { index: stages.length, from: instruction, instructions: [] };
      if (instruction.stageName !== undefined) stage.name = instruction.stageName;
      stages.push(stage);
      continue;
    }
    const current = stages[stages.length - 1];
    if (current) {
      current.instructions.push(instruction);
    } else if (instruction.kind === 'arg') {
      globalArgs.push(instruction);
    } else {
      throw dockerfileError(
        { file, line: instruction.line },
        `${instruction.kind.toUpperCase()} comes before the first FROM; only ARG may appear there, so start the stage with FROM.`,
      );
    }
  }

  if (scanned.lines.length === 0) {
    throw dockerfileError({ file, line: 1 }, 'the Dockerfile has no instructions; start it with FROM <image>.');
  }
  if (stages.length === 0) {
    const last = scanned.lines[scanned.lines.length - 1]!;
    throw dockerfileError({ file, line: last.startLine }, 'the Dockerfile has no FROM, so nothing to build; add FROM <image> after the global ARGs.');
  }
  checkStageNames(stages, file);

  return { file, escape: scanned.escape, directives: scanned.directives, globalArgs, stages, warnings: scanned.warnings };
}

/** Two stages with one name would make FROM and COPY --from ambiguous. */
function checkStageNames(stages: Stage[], file: string): void {
  const seen = new Map<string, Stage>();
  for (const stage of stages) {
    if (stage.name === undefined) continue;
    const earlier = seen.get(stage.name);
    if (earlier) {
      throw dockerfileError(
        { file, line: stage.from.line },
        `the stage name "${stage.name}" is already used by the stage on line ${earlier.from.line}; give each stage its own name.`,
      );
    }
    seen.set(stage.name, stage);
  }
}
