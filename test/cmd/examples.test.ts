// The pipelines in examples/ (Kubernetes, Tekton, GitLab CI) are read as their systems would
// read them; every executor and warmer command line in them goes through kiln's own parser
// (without running it), and every /kaniko and /busybox path they use must exist in the
// executor image as deploy/executor/Dockerfile lays it out, or be mounted or created first.
//
// No YAML parser is among kiln's dependencies, so a small reader for the subset the
// examples use (block mappings and sequences, plain, quoted and block scalars, flow `[]`
// and `{}`) is part of this file; the examples stay within it.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import { parseCommandLine } from '../../cmd/kiln.js';
import { repositoryRoot } from './repository-root.js';

const ROOT = repositoryRoot();
const EXAMPLES = join(ROOT, 'examples');
const EXECUTOR_IMAGE = 'registry.example.com/kiln/executor';

type Yaml = string | null | Yaml[] | { [key: string]: Yaml };
type Map_ = { [key: string]: Yaml };

// ---------------------------------------------------------------------------------------
// The executor image, as deploy/executor/Dockerfile describes it

interface ImageLayout {
  /** Paths in each variant (stage): COPY destinations, WORKDIR, and the paths its layout comment names. */
  variants: Map<string, Set<string>>;
  entrypoint: Map<string, string>;
}

/**
 * What the Dockerfile says is in each stage. COPY copies directories whose contents the
 * Dockerfile cannot show (`COPY runtime/ /kaniko/`); the comment above each stage names
 * what lands where (`#   /kaniko/executor, /kaniko/warmer   static launchers`), and
 * those names count as the image's.
 */
function readImageLayout(dockerfile: string): ImageLayout {
  const variants = new Map<string, Set<string>>();
  const entrypoint = new Map<string, string>();
  let stage: Set<string> | undefined;
  let stageName = '';
  let commented: string[] = [];
  for (const raw of dockerfile.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#')) {
      // `#   /a, /b   description`, and prose naming a path in backquotes or plainly.
      for (const match of line.matchAll(/(?:^#\s+|[\s,`(])(\/[A-Za-z0-9._/-]+)/g)) commented.push(match[1]!.replace(/[.,]$/, ''));
      continue;
    }
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) {
      stageName = from[2] ?? from[1]!;
      stage = new Set(from[1] === 'scratch' ? [] : variants.get(from[1]!) ?? []);
      variants.set(stageName, stage);
      const inherited = entrypoint.get(from[1]!);
      if (inherited) entrypoint.set(stageName, inherited);
      for (const path of commented) stage.add(normal(path));
      commented = [];
      continue;
    }
    if (!stage) continue;
    const copy = /^COPY\s+(?:--\S+\s+)*(\S+)\s+(\S+)$/i.exec(line);
    if (copy) stage.add(normal(copy[2]!));
    const workdir = /^WORKDIR\s+(\S+)/i.exec(line);
    if (workdir) stage.add(normal(workdir[1]!));
    const entry = /^ENTRYPOINT\s+\["([^"]+)"/i.exec(line);
    if (entry) entrypoint.set(stageName, entry[1]!);
  }
  return { variants, entrypoint };
}

function normal(path: string): string {
  return posix.normalize(path).replace(/(.)\/$/, '$1');
}

/** Whether `path` is in the image: listed, or a directory above something listed. */
function inImage(paths: Set<string>, path: string): boolean {
  const wanted = normal(path);
  for (const known of paths) if (known === wanted || known.startsWith(wanted + '/')) return true;
  return false;
}

// ---------------------------------------------------------------------------------------
// Command lines found in the examples

interface Invocation {
  /** Where it is: file and place in it, for messages. */
  where: string;
  /** The kiln image's variant: `latest` → executor, `debug` → debug. */
  variant: string;
  program: string;
  args: string[];
  /** Paths under which something is mounted (volumes, workspaces). */
  mounts: { path: string; volume?: string; readOnly: boolean; provides?: string[] }[];
  /** Paths used (the program, a script's shell and the paths its commands name), each with the directories `mkdir -p` had made by then. */
  used: { path: string; made: string[] }[];
  /** Files a script writes. */
  created: string[];
}

function variantOf(image: string): string {
  const tag = image.slice(image.lastIndexOf(':') + 1);
  return tag === 'debug' || tag.endsWith('-debug') ? 'debug' : 'executor';
}

/** Pods, Jobs and CronJobs: each container of the kiln image, with its mounts. */
function kubernetesInvocations(file: string, docs: Yaml[], layout: ImageLayout): Invocation[] {
  const found: Invocation[] = [];
  for (const doc of docs) {
    const kind = str(get(doc, 'kind'));
    const podSpec = kind === 'Pod' ? get(doc, 'spec') : kind === 'Job' ? get(doc, 'spec', 'template', 'spec') : kind === 'CronJob' ? get(doc, 'spec', 'jobTemplate', 'spec', 'template', 'spec') : undefined;
    if (!podSpec) continue;
    const volumes = new Map((list(get(podSpec, 'volumes'))).map((v) => [str(get(v, 'name')), v]));
    for (const section of ['initContainers', 'containers']) {
      for (const container of list(get(podSpec, section))) {
        const image = str(get(container, 'image'));
        if (!image.startsWith(EXECUTOR_IMAGE + ':')) continue;
        const variant = variantOf(image);
        const command = list(get(container, 'command')).map(str);
        const program = command[0] ?? layout.entrypoint.get(variant)!;
        const mounts = list(get(container, 'volumeMounts')).map((m) => {
          const volume = volumes.get(str(get(m, 'name')));
          assert.ok(volume, `${file}: volume ${str(get(m, 'name'))} is mounted but not defined`);
          const claim = get(volume, 'persistentVolumeClaim', 'claimName');
          const items = list(get(volume, 'secret', 'items')).map((item) => str(get(item, 'path')));
          return {
            path: str(get(m, 'mountPath')),
            volume: claim !== undefined ? `claim:${str(claim)}` : `pod:${file}:${str(get(m, 'name'))}`,
            readOnly: str(get(m, 'readOnly') ?? 'false') === 'true',
            provides: items,
          };
        });
        found.push({ where: `${file} ${kind} ${section} ${str(get(container, 'name'))}`, variant, program, args: [...command.slice(1), ...list(get(container, 'args')).map(str)], mounts, used: [{ path: program, made: [] }], created: [] });
      }
    }
  }
  return found;
}

/** A Tekton Task's steps run with the given parameter values; workspaces are mounted at /workspace/NAME unless they say where. */
function tektonInvocations(file: string, task: Yaml, values: Record<string, string | string[]>, layout: ImageLayout): Invocation[] {
  const found: Invocation[] = [];
  const spec = get(task, 'spec');
  const params = new Map(list(get(spec, 'params')).map((p) => [str(get(p, 'name')), p]));
  const workspaces = list(get(spec, 'workspaces')).map((w) => ({ name: str(get(w, 'name')), path: str(get(w, 'mountPath') ?? `/workspace/${str(get(w, 'name'))}`) }));
  const value = (name: string): string | string[] => {
    if (name in values) return values[name]!;
    const fallback = get(params.get(name), 'default');
    assert.ok(fallback !== undefined, `${file}: param ${name} has no default and no value in the test`);
    return Array.isArray(fallback) ? fallback.map(str) : str(fallback);
  };
  const substitute = (text: string): string =>
    text
      .replace(/\$\(params\.([A-Za-z_]+)\)/g, (_m, name: string) => String(value(name)))
      .replace(/\$\(workspaces\.([A-Za-z_]+)\.path\)/g, (_m, name: string) => workspaces.find((w) => w.name === name)!.path)
      .replace(/\$\(results\.([A-Za-z_]+)\.path\)/g, (_m, name: string) => `/tekton/results/${name}`);
  for (const step of list(get(spec, 'steps'))) {
    const image = substitute(str(get(step, 'image')));
    if (!image.startsWith(EXECUTOR_IMAGE + ':')) continue;
    const variant = variantOf(image);
    const mounts = workspaces.map((w) => ({ path: w.path, readOnly: false }));
    const where = `${file} step ${str(get(step, 'name'))}`;
    const script = get(step, 'script');
    if (script !== undefined) {
      const text = substitute(str(script));
      const shebang = /^#!(\S+)/.exec(text);
      assert.ok(shebang, `${where}: a script starts with #! naming its shell`);
      found.push(...scriptInvocations(where, variant, text.split('\n').slice(1), [shebang[1]!], mounts));
      continue;
    }
    const args = list(get(step, 'args')).flatMap((arg) => {
      const array = /^\$\(params\.([A-Za-z_]+)\[\*\]\)$/.exec(str(arg));
      if (array) return value(array[1]!) as string[];
      return [substitute(str(arg))];
    });
    const command = list(get(step, 'command')).map((c) => substitute(str(c)));
    const program = command[0] ?? layout.entrypoint.get(variant)!;
    found.push({ where, variant, program, args: [...command.slice(1), ...args], mounts, used: [{ path: program, made: [] }], created: [] });
  }
  return found;
}

/** GitLab CI jobs: the image and the script, run by the image's shell. */
function gitlabInvocations(file: string, doc: Yaml, variables: Record<string, string>): Invocation[] {
  const found: Invocation[] = [];
  for (const [name, job] of Object.entries(map(doc))) {
    const image = get(job, 'image');
    if (!image || !str(get(image, 'name')).startsWith(EXECUTOR_IMAGE + ':')) continue;
    const where = `${file} job ${name}`;
    // GitLab runs its script with a shell from the image: the image's entry point must not be in the way.
    assert.deepEqual(list(get(image, 'entrypoint')).map(str), [''], `${where}: entrypoint: [""]`);
    const lines = list(get(job, 'script')).map((line) => str(line).replace(/\$\{?([A-Z_]+)\}?/g, (m, v: string) => variables[v] ?? m));
    found.push(...scriptInvocations(where, variantOf(str(get(image, 'name'))), lines, ['/bin/sh'], []));
  }
  return found;
}

/** Each command of a shell script: kiln runs found in it, and the paths the script uses and creates. */
function scriptInvocations(where: string, variant: string, lines: string[], shell: string[], mounts: Invocation['mounts']): Invocation[] {
  const runs: Invocation[] = [];
  const made: string[] = [];
  const used: Invocation['used'] = shell.map((path) => ({ path, made: [] }));
  const created: string[] = [];
  for (const line of lines) {
    if (line.trim() === '' || line.trim().startsWith('#')) continue;
    const words = shellWords(line);
    const [program, ...rest] = words;
    for (let i = 0; i < words.length; i++) {
      const word = words[i]!;
      if (word === '>' || word === '>>') {
        // A file written: its directory must be there.
        const target = words[++i]!;
        used.push({ path: posix.dirname(target), made: [...made] });
        created.push(target);
      } else if (/^\/(kaniko|busybox)(\/|$)/.test(word) && !(program === 'mkdir' && i > 1)) used.push({ path: word, made: [...made] });
    }
    if (program === 'mkdir' && rest[0] === '-p') made.push(...rest.slice(1));
    if (program === '/kaniko/executor' || program === '/kaniko/warmer') {
      runs.push({ where: `${where}: ${line.slice(0, 60)}`, variant, program, args: rest, mounts, used: [...used], created: [...created] });
    }
  }
  // A script with no kiln run still uses its shell and paths: checked as a run of nothing.
  if (runs.length === 0) runs.push({ where, variant, program: '', args: [], mounts, used, created });
  return runs;
}

/**
 * Splits a POSIX shell command line into words: quotes removed, `$(…)` kept whole inside
 * double quotes, `>`, `|`, `;` and `&&` as words of their own.
 */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let started = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      assert.ok(end > 0, `unterminated ' in: ${line}`);
      word += line.slice(i + 1, end);
      i = end;
      started = true;
    } else if (c === '"') {
      i++;
      for (; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\' && i + 1 < line.length) word += line[++i];
        else if (line.startsWith('$(', i)) {
          const end = substitutionEnd(line, i + 2);
          word += line.slice(i, end + 1);
          i = end;
        } else word += line[i];
      }
      assert.ok(i < line.length, `unterminated " in: ${line}`);
      started = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      started = true;
    } else if (/\s/.test(c) || c === '>' || c === '|' || c === ';' || c === '&') {
      if (started) words.push(word);
      word = '';
      started = false;
      if (c === '>' || c === '|' || c === ';' || c === '&') {
        const double = line[i + 1] === c;
        words.push(double ? c + c : c);
        if (double) i++;
      }
    } else {
      word += c;
      started = true;
    }
  }
  if (started) words.push(word);
  return words;
}

/** The index of the `)` closing a `$(` whose body starts at `start`, quotes and nesting honoured. */
function substitutionEnd(line: string, start: number): number {
  let depth = 1;
  for (let i = start; i < line.length; i++) {
    const c = line[i]!;
    if (c === '\\') i++;
    else if (c === "'") i = line.indexOf("'", i + 1);
    else if (c === '"') {
      for (i++; i < line.length && line[i] !== '"'; i++) {
        if (line[i] === '\\') i++;
        else if (line.startsWith('$(', i)) i = substitutionEnd(line, i + 2);
      }
    } else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  throw new Error(`unterminated $( in: ${line}`);
}

// ---------------------------------------------------------------------------------------
// The checks

const GITLAB_VARIABLES: Record<string, string> = {
  CI_PROJECT_DIR: '/builds/team/app',
  CI_REGISTRY: 'registry.example.com',
  CI_REGISTRY_IMAGE: 'registry.example.com/team/app',
  CI_REGISTRY_USER: 'gitlab-ci-token',
  CI_REGISTRY_PASSWORD: 'secret',
  CI_COMMIT_SHORT_SHA: '1a2b3c4d',
  CI_COMMIT_TAG: 'v1.0.0',
};

/** kiln's own files in the image, which no mount may hide. */
const KILN_ITSELF = ['/kaniko/executor', '/kaniko/warmer', '/kaniko/bin', '/kaniko/lib', '/kaniko/kiln'];

function assertPathsAvailable(run: Invocation, layout: ImageLayout): void {
  const image = layout.variants.get(run.variant);
  assert.ok(image, `${run.where}: the image has a ${run.variant} variant`);
  for (const mount of run.mounts) {
    for (const own of KILN_ITSELF) {
      assert.ok(!(own === mount.path || own.startsWith(mount.path.replace(/\/$/, '') + '/')), `${run.where}: the mount at ${mount.path} hides ${own}`);
    }
  }
  const mounted = (path: string) => run.mounts.some((m) => path === m.path || path.startsWith(m.path.replace(/\/$/, '') + '/'));
  // `mkdir -p a/b` makes a too.
  const madeBy = (made: string[], path: string) => made.some((dir) => normal(dir) === normal(path) || normal(dir).startsWith(normal(path) + '/'));
  const lastMade = run.used.at(-1)?.made ?? [];
  for (const { path, made } of run.used) {
    if (!/^\/(kaniko|busybox|bin)(\/|$)/.test(path)) continue;
    assert.ok(inImage(image, path) || mounted(path) || madeBy(made, path), `${run.where}: ${path} is not in the ${run.variant} image (deploy/executor/Dockerfile), mounted, or made first`);
  }
  for (const arg of run.args) {
    const value = /^--[a-z-]+=(\/(?:kaniko|busybox)(?:\/.*)?)$/.exec(arg)?.[1];
    if (value) assert.ok(inImage(image, value) || mounted(value) || madeBy(lastMade, value) || run.created.includes(value), `${run.where}: ${arg} names a path the image lacks`);
  }
}

async function assertParses(run: Invocation): Promise<Record<string, unknown> | undefined> {
  if (run.program === '') return undefined;
  const command = { '/kaniko/executor': 'build', '/kaniko/warmer': 'warm' }[run.program];
  assert.ok(command, `${run.where}: runs ${run.program}, which is not /kaniko/executor or /kaniko/warmer`);
  const { command: ran, args } = await parseCommandLine([command, ...run.args]).catch((err: unknown) => {
    throw new assert.AssertionError({ message: `${run.where}: kiln ${command} refuses ${run.args.join(' ')}: ${(err as Error).message}` });
  });
  assert.equal(ran, command);
  if (command === 'build') assert.ok((args.destination as string[]).length > 0 || args['no-push'] === true, `${run.where}: a build pushes somewhere or says --no-push`);
  else assert.ok((args.image as string[]).length > 0 || args.dockerfile !== undefined, `${run.where}: the warmer has --image or --dockerfile`);
  return args;
}

function exampleFiles(dir: string): string[] {
  return readdirSync(join(EXAMPLES, dir), { withFileTypes: true })
    .filter((e) => e.isFile() && /\.ya?ml$/.test(e.name))
    .map((e) => join(dir, e.name));
}

function read(relative: string): Yaml[] {
  return parseYamlDocuments(readFileSync(join(EXAMPLES, relative), 'utf8'));
}

// ---------------------------------------------------------------------------------------
// A YAML reader for the subset the examples use

function get(node: Yaml | undefined, ...keys: string[]): Yaml | undefined {
  let current = node;
  for (const key of keys) {
    if (current === undefined || current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    current = current[key];
  }
  return current;
}

function str(node: Yaml | undefined): string {
  assert.ok(typeof node === 'string', `expected a string, got ${JSON.stringify(node)}`);
  return node;
}

function list(node: Yaml | undefined): Yaml[] {
  if (node === undefined || node === null) return [];
  assert.ok(Array.isArray(node), `expected a list, got ${JSON.stringify(node)}`);
  return node;
}

function map(node: Yaml | undefined): Map_ {
  assert.ok(node !== null && typeof node === 'object' && !Array.isArray(node), `expected a mapping, got ${JSON.stringify(node)}`);
  return node;
}

interface Line {
  indent: number;
  text: string;
  number: number;
}

function parseYamlDocuments(source: string): Yaml[] {
  const documents: Line[][] = [[]];
  source.split('\n').forEach((raw, index) => {
    if (/^---\s*$/.test(raw)) documents.push([]);
    else documents.at(-1)!.push({ indent: raw.length - raw.trimStart().length, text: raw.trimEnd().trimStart(), number: index + 1 });
  });
  return documents.filter((lines) => lines.some(isContent)).map((lines) => new YamlReader(lines).document());
}

function isContent(line: Line): boolean {
  return line.text !== '' && !line.text.startsWith('#');
}

class YamlReader {
  private at = 0;

  constructor(private readonly lines: Line[]) {}

  document(): Yaml {
    const node = this.block(0);
    this.skip();
    if (this.at < this.lines.length) this.fail(this.lines[this.at]!, 'unexpected indentation');
    return node;
  }

  private skip(): void {
    while (this.at < this.lines.length && !isContent(this.lines[this.at]!)) this.at++;
  }

  private fail(line: Line, why: string): never {
    throw new Error(`YAML line ${line.number}: ${why}: ${line.text}`);
  }

  /** The node starting at the next content line, if it is indented at least `min`. */
  private block(min: number): Yaml {
    this.skip();
    const line = this.lines[this.at];
    if (!line || line.indent < min) return null;
    if (/^-(\s|$)/.test(line.text)) return this.sequence(line.indent);
    if (keyOf(line.text)) return this.mapping(line.indent);
    this.at++;
    return this.scalar(line.text, line, line.indent - 1);
  }

  private sequence(indent: number): Yaml[] {
    const items: Yaml[] = [];
    for (this.skip(); this.at < this.lines.length; this.skip()) {
      const line = this.lines[this.at]!;
      if (line.indent !== indent || !/^-(\s|$)/.test(line.text)) break;
      const content = line.text.slice(1).trimStart();
      if (content === '') {
        this.at++;
        items.push(this.block(indent + 1));
        continue;
      }
      // The item's content, as if it were a line of its own at its own column.
      this.lines[this.at] = { indent: indent + line.text.length - content.length, text: content, number: line.number };
      items.push(this.block(indent + 1));
    }
    return items;
  }

  private mapping(indent: number): Map_ {
    const result: Map_ = {};
    for (this.skip(); this.at < this.lines.length; this.skip()) {
      const line = this.lines[this.at]!;
      if (line.indent !== indent) break;
      const entry = keyOf(line.text);
      if (!entry) this.fail(line, 'expected "key: value"');
      this.at++;
      const rest = stripComment(entry.rest);
      if (rest === '') {
        this.skip();
        const next = this.lines[this.at];
        // A sequence may sit at its key's own indentation.
        result[entry.key] = next && next.indent === indent && /^-(\s|$)/.test(next.text) ? this.sequence(indent) : this.block(indent + 1);
      } else if (/^[|>][-+]?$/.test(rest)) result[entry.key] = this.blockScalar(rest, indent);
      else result[entry.key] = this.scalar(entry.rest, line, indent);
    }
    return result;
  }

  /** A scalar whose first line is `text`; a plain one continues on lines indented past `parentIndent`. */
  private scalar(text: string, line: Line, parentIndent: number): Yaml {
    const trimmed = text.trim();
    if (trimmed.startsWith('"')) return doubleQuoted(trimmed, () => this.fail(line, 'bad double-quoted scalar'));
    if (trimmed.startsWith("'")) {
      const match = /^'((?:[^']|'')*)'\s*(#.*)?$/.exec(trimmed) ?? this.fail(line, 'bad single-quoted scalar');
      return match[1]!.replace(/''/g, "'");
    }
    if (trimmed.startsWith('[') || trimmed.startsWith('{')) return flow(stripComment(trimmed), () => this.fail(line, 'unsupported flow collection'));
    const parts = [stripComment(trimmed)];
    for (; this.at < this.lines.length; this.at++) {
      const next = this.lines[this.at]!;
      if (next.text === '' || next.indent <= parentIndent || next.text.startsWith('#')) break;
      parts.push(stripComment(next.text));
    }
    const value = parts.join(' ');
    return value === '~' || value === 'null' ? null : value;
  }

  private blockScalar(header: string, indent: number): string {
    const body: Line[] = [];
    for (; this.at < this.lines.length; this.at++) {
      const line = this.lines[this.at]!;
      if (line.text !== '' && line.indent <= indent) break;
      body.push(line);
    }
    while (body.length > 0 && body.at(-1)!.text === '') body.pop();
    const column = Math.min(...body.filter((l) => l.text !== '').map((l) => l.indent));
    const texts = body.map((l) => (l.text === '' ? '' : ' '.repeat(l.indent - column) + l.text));
    const joined = header.startsWith('|') ? texts.join('\n') : texts.join(' ').replace(/ {2,}/g, ' ');
    return header.endsWith('-') ? joined : joined + '\n';
  }
}

/** `key: rest` (or `key:` ending the line), for a plain or quoted key. */
function keyOf(text: string): { key: string; rest: string } | undefined {
  const match = /^("[^"]*"|'[^']*'|[^\s#'"\-[{][^:#]*?|-[^\s:#][^:#]*?)\s*:(?:\s+(.*)|$)/.exec(text);
  if (!match) return undefined;
  const raw = match[1]!;
  return { key: raw.startsWith('"') || raw.startsWith("'") ? raw.slice(1, -1) : raw, rest: match[2] ?? '' };
}

function stripComment(text: string): string {
  const at = text.search(/(^|\s)#/);
  return (at < 0 ? text : text.slice(0, at)).trim();
}

function doubleQuoted(text: string, fail: () => never): string {
  const match = /^"((?:[^"\\]|\\.)*)"\s*(#.*)?$/.exec(text) ?? fail();
  return match[1]!.replace(/\\(.)/g, (_m, c: string) => ({ n: '\n', t: '\t', '"': '"', '\\': '\\', '/': '/' })[c] ?? fail());
}

/** `[]`, `{}` and one-line flow sequences of scalars. */
function flow(text: string, fail: () => never): Yaml {
  if (text === '{}') return {};
  if (!text.startsWith('[') || !text.endsWith(']')) fail();
  const inner = text.slice(1, -1).trim();
  if (inner === '') return [];
  const items: string[] = [];
  for (const match of inner.matchAll(/\s*("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^,[\]{}]+)\s*(,|$)/g)) {
    const item = match[1]!.trim();
    items.push(item.startsWith('"') ? doubleQuoted(item, fail) : item.startsWith("'") ? item.slice(1, -1).replace(/''/g, "'") : item);
  }
  return items;
}

// ---------------------------------------------------------------------------------------
// The tests

const dockerfilePath = join(ROOT, 'deploy', 'executor', 'Dockerfile');
const layout = readImageLayout(readFileSync(dockerfilePath, 'utf8'));

describe('the executor image layout the examples are checked against', () => {
  it('has kaniko\'s paths in both variants and a shell only in debug (deploy/executor/Dockerfile)', () => {
    for (const variant of ['executor', 'debug']) {
      const paths = layout.variants.get(variant)!;
      assert.ok(paths, `a ${variant} stage`);
      for (const path of ['/kaniko/executor', '/kaniko/warmer', '/kaniko/ssl/certs', '/workspace']) assert.ok(inImage(paths, path), `${variant} has ${path}`);
      assert.equal(layout.entrypoint.get(variant), '/kaniko/executor');
    }
    assert.ok(inImage(layout.variants.get('debug')!, '/busybox'));
    assert.ok(!inImage(layout.variants.get('executor')!, '/busybox'), 'the executor variant has no /busybox (the check can fail)');
  });
});

describe('examples/kubernetes', () => {
  const files = exampleFiles('kubernetes');
  const runs = files.flatMap((file) => kubernetesInvocations(file, read(file), layout));

  it('has a Pod and a Job running the executor, and the warmer as an init container and as a Job', () => {
    const kinds = runs.map((r) => `${r.where.split(' ')[1]} ${r.where.split(' ')[2]} ${r.program}`);
    for (const wanted of ['Pod initContainers /kaniko/warmer', 'Pod containers /kaniko/executor', 'Job containers /kaniko/executor', 'Job containers /kaniko/warmer']) {
      assert.ok(kinds.includes(wanted), `examples/kubernetes has a ${wanted}: ${kinds.join('; ')}`);
    }
  });

  it('every executor and warmer command line is one kiln accepts', async () => {
    for (const run of runs) await assertParses(run);
  });

  it('every /kaniko path is in the image or mounted, and no mount hides kiln', () => {
    for (const run of runs) assertPathsAvailable(run, layout);
  });

  it('registry credentials are mounted as /kaniko/.docker/config.json', () => {
    for (const run of runs) {
      const docker = run.mounts.find((m) => m.path === '/kaniko/.docker');
      assert.ok(docker?.provides?.includes('config.json'), `${run.where}: a secret with config.json at /kaniko/.docker`);
    }
  });

  it('builds use --cache and --cache-repo, and read --cache-dir from a volume a warmer fills', async () => {
    const warmed = new Set<string>();
    const builds: Array<{ run: Invocation; args: Record<string, unknown> }> = [];
    for (const run of runs) {
      const args = (await assertParses(run))!;
      const cacheDir = args['cache-dir'] as string;
      const volume = run.mounts.find((m) => m.path === cacheDir)?.volume;
      assert.ok(volume, `${run.where}: --cache-dir ${cacheDir} is a mounted volume`);
      if (run.program === '/kaniko/warmer') {
        assert.ok(!run.mounts.find((m) => m.path === cacheDir)!.readOnly, `${run.where}: the warmer can write ${cacheDir}`);
        warmed.add(volume);
      } else builds.push({ run, args });
    }
    for (const { run, args } of builds) {
      assert.equal(args.cache, true, `${run.where}: --cache`);
      assert.match(String(args['cache-repo']), /^registry\.example\.com\//, `${run.where}: --cache-repo`);
      const volume = run.mounts.find((m) => m.path === args['cache-dir'])!.volume!;
      assert.ok(warmed.has(volume), `${run.where}: some warmer fills ${volume}`);
    }
  });
});

describe('examples/tekton', () => {
  const [file] = exampleFiles('tekton');
  const task = read(file!)[0]!;

  it('has the interface of the catalog\'s kaniko Task', () => {
    assert.equal(str(get(task, 'kind')), 'Task');
    const spec = get(task, 'spec');
    assert.deepEqual(list(get(spec, 'params')).map((p) => str(get(p, 'name'))).sort(), ['BUILDER_IMAGE', 'CONTEXT', 'DOCKERFILE', 'EXTRA_ARGS', 'IMAGE']);
    assert.deepEqual(list(get(spec, 'results')).map((r) => str(get(r, 'name'))).sort(), ['IMAGE_DIGEST', 'IMAGE_URL']);
    assert.deepEqual(list(get(spec, 'workspaces')).map((w) => str(get(w, 'name'))).sort(), ['dockerconfig', 'source']);
    const dockerconfig = list(get(spec, 'workspaces')).find((w) => str(get(w, 'name')) === 'dockerconfig');
    assert.equal(str(get(dockerconfig, 'mountPath')), '/kaniko/.docker');
    assert.equal(str(get(dockerconfig, 'optional')), 'true');
    const extra = list(get(spec, 'params')).find((p) => str(get(p, 'name')) === 'EXTRA_ARGS');
    assert.equal(str(get(extra, 'type')), 'array');
  });

  // The catalog Task's defaults, and a run passing what its users typically passed.
  const runsWith = (values: Record<string, string | string[]>) => tektonInvocations(file!, task, { IMAGE: 'registry.example.com/team/app:1.0.0', ...values }, layout);
  const cases: Record<string, string | string[]>[] = [
    {},
    { EXTRA_ARGS: ['--cache=true', '--cache-repo=registry.example.com/team/app/cache', '--snapshotMode=redo', '--skip-tls-verify'], CONTEXT: 'app', DOCKERFILE: 'app/Dockerfile' },
  ];

  it('the build step\'s command line is one kiln accepts, writing IMAGE_DIGEST', async () => {
    for (const values of cases) {
      const builds = runsWith(values).filter((r) => r.program === '/kaniko/executor');
      assert.equal(builds.length, 1);
      const args = (await assertParses(builds[0]!))!;
      assert.equal(args['digest-file'], '/tekton/results/IMAGE_DIGEST');
      assert.deepEqual(args.destination, ['registry.example.com/team/app:1.0.0']);
    }
  });

  it('every /kaniko and /busybox path is in the image or mounted, and IMAGE_URL is written', () => {
    for (const values of cases) for (const run of runsWith(values)) assertPathsAvailable(run, layout);
    const script = runsWith({}).find((r) => r.program === '' && r.created.includes('/tekton/results/IMAGE_URL'));
    const tee = list(get(get(task, 'spec'), 'steps')).some((s) => /tee "?\$\(results\.IMAGE_URL\.path\)/.test(str(get(s, 'script') ?? '')));
    assert.ok(script || tee, 'a step writes the IMAGE_URL result');
  });
});

describe('examples/gitlab', () => {
  const file = join('gitlab', '.gitlab-ci.yml');
  const runs = gitlabInvocations(file, read(file)[0]!, GITLAB_VARIABLES);

  it('runs /kaniko/executor from the debug image with GitLab\'s variables', async () => {
    const builds = runs.filter((r) => r.program === '/kaniko/executor');
    assert.ok(builds.length >= 1);
    for (const run of builds) {
      assert.equal(run.variant, 'debug', `${run.where}: a script needs the debug image's shell`);
      const args = (await assertParses(run))!;
      assert.equal(args.context, GITLAB_VARIABLES.CI_PROJECT_DIR);
      assert.equal(args.dockerfile, `${GITLAB_VARIABLES.CI_PROJECT_DIR}/Dockerfile`);
      assert.equal(args.cache, true);
      assert.equal(args['cache-repo'], `${GITLAB_VARIABLES.CI_REGISTRY_IMAGE}/cache`);
    }
  });

  it('writes config.json into /kaniko/.docker before the build, and uses only paths the image has', () => {
    for (const run of runs) {
      assert.ok(run.created.includes('/kaniko/.docker/config.json'), `${run.where}: writes /kaniko/.docker/config.json`);
      assertPathsAvailable(run, layout);
    }
  });

  it('the check fails for a script writing into a directory nobody made', () => {
    const [run] = scriptInvocations('a script without mkdir', 'debug', ['echo {} > /kaniko/.docker/config.json', '/kaniko/executor --no-push'], ['/bin/sh'], []);
    assert.throws(() => assertPathsAvailable(run!, layout), /\/kaniko\/\.docker is not in the debug image/);
  });
});

describe('the YAML reader the checks use', () => {
  it('reads what the examples use as YAML does', () => {
    const text = [
      '# a comment',
      'a: plain value # trailing comment',
      'b: "double \\"quoted\\" # not a comment"',
      "c: 'single ''quoted'''",
      'd: [""]',
      'e: {}',
      'f:',
      '  - one',
      '  - key: v',
      '    other: w',
      '  - /kaniko/executor',
      '    --context "x"',
      'g: |',
      '  line 1',
      '    indented',
      'h: >-',
      '  folded',
      '  text',
      'i:',
      '- same-indent item',
      '---',
      'second: doc',
    ].join('\n');
    assert.deepEqual(parseYamlDocuments(text), [
      {
        a: 'plain value',
        b: 'double "quoted" # not a comment',
        c: "single 'quoted'",
        d: [''],
        e: {},
        f: ['one', { key: 'v', other: 'w' }, '/kaniko/executor --context "x"'],
        g: 'line 1\n  indented\n',
        h: 'folded text',
        i: ['same-indent item'],
      },
      { second: 'doc' },
    ]);
  });

  it('splits shell words as sh does for the examples\' lines', () => {
    assert.deepEqual(shellWords(`echo "{\\"a\\":\\"$(printf "%s:%s" "u" "p" | base64 | tr -d '\\n')\\"}" > /kaniko/.docker/config.json`), [
      'echo',
      `{"a":"$(printf "%s:%s" "u" "p" | base64 | tr -d '\\n')"}`,
      '>',
      '/kaniko/.docker/config.json',
    ]);
  });
});
