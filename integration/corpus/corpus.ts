// The Dockerfile corpus: one directory per case under integration/corpus/, each a build
// context with its Dockerfile. Fixtures name the servers of a test run with placeholders
// ({{REGISTRY}}, {{HTTP}}, ...), filled in when the context is copied to a temp directory.
// What kiln produced is checked with tools kiln did not write: skopeo, umoci and runc.
import { cpSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pullToLayout, runImage, runKiln as runKilnProcess, skopeoInspect, umociUnpack, type ImageRun, type RunningRegistry } from '../harness/index.js';

const here = dirname(fileURLToPath(import.meta.url));
/** The compiled helper runs from dist/integration/corpus; the fixtures stay in the source tree. */
export const CORPUS_DIR = resolve(here, '..', '..', '..', 'integration', 'corpus');

export interface KilnResult {
  code: number;
  stdout: string;
  stderr: string;
  /** The lines of stderr that start with `kiln: error:`. */
  errors: string[];
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  empty_layer?: boolean;
}

/** One test file's workspace: a temp directory, the registry, and the placeholder values. */
export class Corpus {
  readonly work = mkdtempSync(join(tmpdir(), 'kiln-corpus-'));
  private copies = 0;

  constructor(
    readonly registry: RunningRegistry,
    readonly vars: Record<string, string> = {},
  ) {}

  /**
   * Copies the fixture `name` into a fresh build context, with every `{{NAME}}` in its
   * Dockerfiles replaced. A placeholder without a value fails the test rather than the build.
   */
  context(name: string, extraVars: Record<string, string> = {}): string {
    const source = join(CORPUS_DIR, name);
    if (!statSync(source).isDirectory()) throw new Error(`no corpus fixture ${name}`);
    const dir = join(this.work, `${name}-${++this.copies}`);
    cpSync(source, dir, { recursive: true });
    const vars: Record<string, string> = { REGISTRY: this.registry.host, ...this.vars, ...extraVars };
    for (const file of listFiles(dir)) {
      if (!/(^|\/)(Dockerfile[^/]*|[^/]*\.Dockerfile)$/.test(file) || file.endsWith('.dockerignore')) continue;
      const text = readFileSync(file, 'utf8').replace(/\{\{([A-Z0-9_]+)\}\}/g, (whole, key: string) => {
        const value = vars[key];
        if (value === undefined) throw new Error(`${file}: no value for the placeholder ${whole}`);
        return value;
      });
      writeFileSync(file, text);
    }
    return dir;
  }

  /** `repo:tag` on this file's registry, as kiln's --destination wants it. */
  ref(repoTag: string): string {
    return `${this.registry.host}/${repoTag}`;
  }

  /** Runs `kiln build --log-format=text ARGS` with no credentials unless `env` brings some. */
  build(args: string[], env: Record<string, string> = {}): Promise<KilnResult> {
    return runKiln(['build', '--log-format=text', ...args], { DOCKER_CONFIG: join(this.work, 'no-docker-config'), ...env });
  }

  /** Builds `fixture` and pushes it to `repoTag`; fails the test with kiln's output when the build fails. */
  async buildAndPush(fixture: string, repoTag: string, extraArgs: string[] = [], env: Record<string, string> = {}): Promise<{ digest: string; result: KilnResult; contextDir: string }> {
    const contextDir = this.context(fixture);
    const result = await this.build(['--context', contextDir, '--destination', this.ref(repoTag), ...extraArgs], env);
    if (result.code !== 0) throw new Error(`kiln build of ${fixture} exited with ${result.code}:\n${result.stderr}`);
    return { digest: result.stdout.trim(), result, contextDir };
  }

  /** The image config blob exactly as stored (skopeo's parsed --config drops Docker-only fields such as Healthcheck). */
  config(repoTag: string): Promise<any> {
    return skopeoInspect(this.registry, repoTag, { config: true, raw: true });
  }

  manifest(repoTag: string): Promise<any> {
    return skopeoInspect(this.registry, repoTag, { raw: true });
  }

  /** Pulls `repoTag` with skopeo into an OCI layout (tag `image`). */
  async layout(repoTag: string): Promise<string> {
    const dir = mkdtempSync(join(this.work, 'layout-'));
    rmSync(dir, { recursive: true });
    await pullToLayout(this.registry, repoTag, dir, 'image');
    return dir;
  }

  /** The image's root filesystem as umoci unpacks it (owners kept: the tests run as root). */
  async rootfs(repoTag: string): Promise<string> {
    return this.unpackLayout(await this.layout(repoTag), 'image');
  }

  async unpackLayout(layoutDir: string, tag: string): Promise<string> {
    const bundle = mkdtempSync(join(this.work, 'bundle-'));
    rmSync(bundle, { recursive: true });
    await umociUnpack(layoutDir, tag, bundle);
    return join(bundle, 'rootfs');
  }

  /** Runs the image with runc: its own entrypoint and command, or `args`. */
  async run(repoTag: string, args?: string[]): Promise<ImageRun> {
    return runImage(await this.layout(repoTag), 'image', args);
  }

  /** Whether the registry has `repoTag` (skopeo can inspect it). */
  async exists(repoTag: string): Promise<boolean> {
    try {
      await skopeoInspect(this.registry, repoTag);
      return true;
    } catch {
      return false;
    }
  }

  remove(): void {
    rmSync(this.work, { recursive: true, force: true });
  }
}

export async function runKiln(args: string[], env: Record<string, string> = {}): Promise<KilnResult> {
  const run = await runKilnProcess(args, { env });
  return { ...run, errors: run.stderr.split('\n').filter((line) => line.startsWith('kiln: error:')) };
}

function listFiles(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...listFiles(path));
    else if (entry.isFile()) files.push(path);
  }
  return files;
}

/** The history entries an image added on top of its base's `baseCount` entries. */
export function addedHistory(config: { history: HistoryEntry[] }, baseCount: number): HistoryEntry[] {
  return config.history.slice(baseCount);
}

/** Layers equal the history entries that are not empty layers, as the image spec requires. */
export function nonEmptyHistory(config: { history: HistoryEntry[] }): number {
  return config.history.filter((entry) => !entry.empty_layer).length;
}

/** Reads a file of an unpacked root filesystem. */
export function readIn(rootfs: string, path: string): string {
  return readFileSync(join(rootfs, path), 'utf8');
}

/** uid, gid and permission bits of a path in an unpacked root filesystem (not following links). */
export function ownerAndMode(rootfs: string, path: string): { uid: number; gid: number; mode: number } {
  const st = lstatSync(join(rootfs, path));
  return { uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
}
