// The Dockerfile and context of kiln's build benchmarks: a Debian base, a RUN that leaves a
// node_modules-like tree of 100,000 small files in 2,000 directories (what `npm install`
// leaves behind), a trivial RUN, a COPY of one small context file and a RUN that deletes one
// package. Every tool under comparison builds the very same files.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export const DIRECTORIES = 2000;
export const FILES_PER_DIRECTORY = 50;

/** The step whose time is kiln's per-step overhead: a command that writes one file. */
export const TRIVIAL_RUN = 'RUN echo hello > /app/hello.txt';

export interface BenchContext {
  /** The context directory; the Dockerfile is in it. */
  dir: string;
  dockerfile: string;
  /** The instructions after FROM, as written. */
  steps: string[];
}

/**
 * The tree-making RUN forks three processes in all (mkdir and two seq), so its time is the
 * filesystem's, not process start-up's: `dash`'s echo is a builtin.
 */
function treeRun(directories: number, files: number): string {
  return (
    `RUN mkdir -p $(seq -f '/app/node_modules/m%g' 1 ${directories}) && F=$(seq 1 ${files}) && ` +
    `for d in $(seq 1 ${directories}); do for f in $F; do echo $d$f > /app/node_modules/m$d/f$f.js; done; done`
  );
}

/** Writes the context into `dir` (which must not exist yet), FROM `baseRef`. */
export async function writeNodeModulesContext(dir: string, baseRef: string, directories = DIRECTORIES, files = FILES_PER_DIRECTORY): Promise<BenchContext> {
  await mkdir(dir, { recursive: false });
  const steps = [treeRun(directories, files), TRIVIAL_RUN, 'COPY small.js /app/small.js', 'RUN rm -rf /app/node_modules/m1'];
  await writeFile(join(dir, 'small.js'), "module.exports = () => 'hello';\n");
  const dockerfile = join(dir, 'Dockerfile');
  await writeFile(dockerfile, [`FROM ${baseRef}`, ...steps, ''].join('\n'));
  return { dir, dockerfile, steps };
}
