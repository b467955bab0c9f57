// Builds kiln's executor image (deploy/executor/Dockerfile) with kiln itself: it stages a
// build context holding everything the image needs, then runs `kiln build` on it once per
// variant (`executor` and `debug`), writing an OCI layout, docker tarballs and, when
// destinations are given, pushing.
//
//   npm run executor-image [-- --out DIR] [--destination REF]... [--variant executor|debug|all]
//
// Needs `ldd`, `patchelf`, `strip`, `gcc -static` (glibc's libc.a) and, for the debug
// variant, Debian's busybox-static; patchelf is installed with apt-get when missing and the
// script runs as root.
import { spawn } from 'node:child_process';
import { createReadStream, existsSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { createGunzip } from 'node:zlib';
import { BUNDLE_EXTERNALS } from './bundle-externals.js';

export type Variant = 'executor' | 'debug';
export const VARIANTS: readonly Variant[] = ['executor', 'debug'];

/** Where the image keeps itself; fixed, because node's ELF header names the loader in it. */
const KANIKO = '/kaniko';
const LIB_DIR = `${KANIKO}/lib`;
const DEFAULT_NAME = 'kiln/executor';
const CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';
const BUSYBOX = '/bin/busybox';

export interface ExecutorImageOptions {
  /** The kiln checkout: dist/ must be built. */
  root: string;
  /** Output directory: `oci/` (tags `latest` and `debug` unless destinations say otherwise) and one docker tarball per variant. */
  out: string;
  variants?: readonly Variant[];
  /** Push the executor variant here (the debug variant goes to the same names with a `-debug` tag); none: build only. */
  destinations?: readonly string[];
  /** The node binary to ship; default the one running this script. */
  node?: string;
  /** Extra `kiln build` flags (registry access for pushing, e.g. --insecure). */
  kilnArgs?: readonly string[];
  log?: (line: string) => void;
  /** Keep kiln's build log out of the output; it is part of the error when a build fails. */
  quiet?: boolean;
}

export interface VariantResult {
  variant: Variant;
  digest: string;
  /** The OCI layout's ref name for this variant. */
  tag: string;
  tarPath: string;
  compressedBytes: number;
  uncompressedBytes: number;
}

export interface ExecutorImageResult {
  layoutDir: string;
  variants: VariantResult[];
}

export async function buildExecutorImage(options: ExecutorImageOptions): Promise<ExecutorImageResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const variants = options.variants ?? VARIANTS;
  const out = resolve(options.out);
  await ensureTools(variants.includes('debug'), log);
  const work = await mkdtemp(join(tmpdir(), 'kiln-executor-image-'));
  const context = join(work, 'context');
  await mkdir(context);
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(1)} s`;
  try {
    await stageContext(context, { ...options, variants, log });
    log(`executor-image: context ready after ${elapsed()}`);
    const layoutDir = join(out, 'oci');
    await mkdir(out, { recursive: true });
    const results: VariantResult[] = [];
    for (const variant of variants) {
      const destinations = (options.destinations ?? []).map((ref) => (variant === 'debug' ? debugReference(ref) : ref));
      const names = destinations.length > 0 ? destinations : [`${DEFAULT_NAME}:${variant === 'debug' ? 'debug' : 'latest'}`];
      const tarPath = join(out, variant === 'debug' ? 'executor-debug.tar' : 'executor.tar');
      const digestFile = join(work, `${variant}.digest`);
      log(`executor-image: building the ${variant} variant with kiln`);
      await run(process.execPath, [
        join(options.root, 'dist', 'kiln.js'), 'build',
        '--context', context,
        '--dockerfile', 'Dockerfile',
        '--target', variant,
        '--reproducible',
        // The Dockerfile has no RUN; chroot only keeps kiln from refusing two stages, which
        // it does with --isolation none when this script itself runs in an executor image.
        '--isolation', 'chroot',
        // kiln never writes into its --kaniko-dir (/kaniko by default), where every file of
        // this image goes: the build names another one.
        '--kaniko-dir', join(work, 'kaniko'),
        // The debug variant is the executor plus two layers: kiln's layer cache hands the
        // executor's layers to the second build instead of compressing them again.
        '--cache', '--cache-copy-layers', '--cache-repo', `oci:${join(work, 'cache')}`,
        '--oci-layout-path', layoutDir,
        '--tar-path', tarPath,
        '--digest-file', digestFile,
        '--log-format', 'text',
        ...names.flatMap((name) => ['--destination', name]),
        ...(destinations.length > 0 ? [] : ['--no-push']),
        ...(options.kilnArgs ?? []),
      ], { inherit: !options.quiet });
      const digest = (await readFile(digestFile, 'utf8')).trim();
      const tag = tagOf(names[0]!);
      const sizes = await imageSizes(layoutDir, digest);
      results.push({ variant, digest, tag, tarPath, ...sizes });
      log(`executor-image: ${variant} ${digest} (oci:${layoutDir}:${tag}, ${tarPath}): ${formatMiB(sizes.compressedBytes)} compressed, ${formatMiB(sizes.uncompressedBytes)} uncompressed; ${elapsed()}`);
    }
    return { layoutDir, variants: results };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** kaniko's naming: `:latest` has `:debug`, any other tag `TAG-debug`. */
function debugReference(ref: string): string {
  const at = ref.lastIndexOf(':');
  const tag = at > ref.lastIndexOf('/') ? ref.slice(at + 1) : '';
  const repo = tag ? ref.slice(0, at) : ref;
  return `${repo}:${tag === '' || tag === 'latest' ? 'debug' : `${tag}-debug`}`;
}

function tagOf(ref: string): string {
  const at = ref.lastIndexOf(':');
  return at > ref.lastIndexOf('/') ? ref.slice(at + 1) : 'latest';
}

interface StageOptions extends ExecutorImageOptions {
  variants: readonly Variant[];
  log: (line: string) => void;
}

/** The build context: the Dockerfile's COPY sources, one directory per layer. */
async function stageContext(context: string, options: StageOptions): Promise<void> {
  const { root } = options;
  if (!existsSync(join(root, 'dist', 'kiln.js'))) throw new Error(`${root}/dist is not built: run "npm run build" first`);
  await copyFile(join(root, 'deploy', 'executor', 'Dockerfile'), join(context, 'Dockerfile'));
  await writeFile(join(context, 'kiln-executor'), '');

  const runtime = join(context, 'runtime');
  const bin = join(runtime, 'bin');
  await mkdir(bin, { recursive: true });
  for (const [name, command] of [['executor', 'build'], ['warmer', 'warm']] as const) {
    await run('gcc', ['-static', '-Os', '-s', '-Wall', '-Werror', `-DKILN_COMMAND="${command}"`, '-o', join(runtime, name), join(root, 'deploy', 'executor', 'launcher.c')]);
  }
  // setpriv: kiln's `none` isolation sets supplementary groups with it, and the base image
  // extracted into `/` may have none.
  const programs = [{ from: options.node ?? process.execPath, to: join(bin, 'node') }, { from: await which('setpriv'), to: join(bin, 'setpriv') }];
  for (const { from, to } of programs) {
    await copyFile(from, to);
    // Debug information and the static symbol table are an eighth of node; addons link
    // against its dynamic symbols, which stay.
    await run('strip', ['--strip-all', to]);
  }

  await copyKiln(root, join(context, 'kiln'));
  const addons = await findFiles(join(context, 'kiln', 'node_modules'), (name) => name.endsWith('.node'));
  const libDir = join(runtime, 'lib');
  await mkdir(libDir);
  const { loader, libraries } = await sharedLibraries([...programs.map((p) => p.from), ...addons]);
  for (const [name, path] of libraries) await copyFile(path, join(libDir, name));
  await copyFile(loader, join(libDir, basename(loader)));
  for (const { to } of programs) {
    // RPATH rather than RUNPATH: it also applies to the libraries' own dependencies and to
    // addons node loads, and LD_LIBRARY_PATH cannot override it.
    await run('patchelf', ['--set-interpreter', `${LIB_DIR}/${basename(loader)}`, '--force-rpath', '--set-rpath', LIB_DIR, to]);
  }

  await mkdir(join(context, 'certs'));
  await copyFile(CA_BUNDLE, join(context, 'certs', 'ca-certificates.crt'));
  if (options.variants.includes('debug')) await stageBusybox(context);
  await run('chmod', ['-R', 'u+rwX,go+rX,go-w', context]);
  options.log(`executor-image: staged the context (node ${options.node ?? process.execPath}, ${libraries.size} libraries, ${addons.length} native addons)`);
}

/**
 * Every shared library the ELF files need, by the name they ask for (`libc.so.6`), and the
 * dynamic loader: what `ldd` resolves on this machine.
 */
async function sharedLibraries(files: readonly string[]): Promise<{ loader: string; libraries: Map<string, string> }> {
  const libraries = new Map<string, string>();
  let loader: string | undefined;
  for (const file of files) {
    const { stdout } = await run('ldd', [file]);
    for (const line of stdout.split('\n')) {
      const resolved = /^\s*(\S+) => (\/\S+) \(0x/.exec(line);
      const direct = /^\s*(\/\S+) \(0x/.exec(line);
      if (resolved) libraries.set(resolved[1]!, resolved[2]!);
      else if (direct && /\/ld-linux[^/]*\.so/.test(direct[1]!)) loader = direct[1]!;
      else if (/not found/.test(line)) throw new Error(`${file} needs a library ldd cannot find: ${line.trim()}`);
    }
  }
  if (!loader) throw new Error(`ldd names no dynamic loader for ${files[0]}; is it a dynamically linked glibc program?`);
  // The loader also appears by its own name (ld-linux-x86-64.so.2 => /lib64/...): one copy is enough.
  libraries.delete(basename(loader));
  return { loader, libraries };
}

/**
 * The packages the bundle leaves out (native addons, loaded from node_modules at run time),
 * copied from node_modules; the others are inside dist/kiln.js.
 */
async function copyExternalModules(root: string, target: string): Promise<void> {
  for (const name of BUNDLE_EXTERNALS) {
    const from = join(root, 'node_modules', name);
    await cp(from, join(target, name), { recursive: true, verbatimSymlinks: true, filter: (source) => keepModuleFile(from, source) });
  }
}

/**
 * The license and notice files of every production dependency (package-lock.json lists
 * them), in one file: the bundle carries their code without their package directories.
 */
async function writeThirdPartyLicenses(root: string, file: string): Promise<void> {
  const lock = JSON.parse(await readFile(join(root, 'package-lock.json'), 'utf8')) as { packages?: Record<string, { dev?: boolean; version?: string }> };
  const sections: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages ?? {})) {
    if (!path.startsWith('node_modules/') || entry.dev) continue;
    const dir = join(root, path);
    // An optional dependency for another platform is listed but not installed.
    if (!existsSync(dir)) continue;
    const notices = (await readdir(dir)).filter((name) => /^(licen[cs]e|notice|copying)/i.test(name)).sort();
    for (const name of notices) {
      sections.push(`${relative('node_modules', path)}@${entry.version ?? '?'} — ${name}\n\n${(await readFile(join(dir, name), 'utf8')).trim()}\n`);
    }
  }
  await writeFile(file, sections.join('\n' + '-'.repeat(72) + '\n\n'));
}

/**
 * Leaves out what only building or type-checking uses (declarations, source maps, C sources,
 * compiler intermediates), prebuilt binaries for other platforms, and nested packages
 * (copied on their own).
 */
function keepModuleFile(packageDir: string, source: string): boolean {
  const inside = relative(packageDir, source);
  if (inside.split('/').includes('node_modules')) return false;
  if (/\.(d\.[cm]?ts|map|o|a|mk|c|cc|cpp|h|hpp|gyp|gypi)$/.test(source)) return false;
  const prebuilt = /(?:^|\/)prebuilds\/([^/]+)/.exec(inside);
  if (prebuilt && prebuilt[1] !== `${process.platform}-${process.arch}`) return false;
  return !/(^|\/)(obj\.target|\.deps)(\/|$)/.test(inside);
}

/** The bundled kiln (scripts/bundle.ts) and the licenses of what it holds. */
async function copyKiln(root: string, target: string): Promise<void> {
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { name: string; version: string };
  await mkdir(target, { recursive: true });
  await copyFile(join(root, 'dist', 'kiln.js'), join(target, 'kiln.js'));
  await copyExternalModules(root, join(target, 'node_modules'));
  await writeThirdPartyLicenses(root, join(target, 'THIRD-PARTY-LICENSES.txt'));
  await writeFile(join(target, 'package.json'), JSON.stringify({ name: pkg.name, version: pkg.version, type: 'module', private: true }, null, 2) + '\n');
}

/** busybox-static with a link per applet, and /bin/sh, as in kaniko's debug image. */
async function stageBusybox(context: string): Promise<void> {
  const dir = join(context, 'busybox');
  await mkdir(dir);
  await copyFile(BUSYBOX, join(dir, 'busybox'));
  const { stdout } = await run(BUSYBOX, ['--list']);
  for (const applet of stdout.split('\n').map((s) => s.trim()).filter((s) => s && s !== 'busybox')) {
    await symlink('busybox', join(dir, applet));
  }
  await mkdir(join(context, 'bin'));
  await symlink('/busybox/sh', join(context, 'bin', 'sh'));
}

/** Sum of the layer blobs, and of the layers unpacked (their tar streams). */
async function imageSizes(layoutDir: string, digest: string): Promise<{ compressedBytes: number; uncompressedBytes: number }> {
  const blob = (d: string) => join(layoutDir, 'blobs', ...d.split(':'));
  const manifest = JSON.parse(await readFile(blob(digest), 'utf8')) as { layers: { digest: string; size: number }[] };
  let compressedBytes = 0;
  let uncompressedBytes = 0;
  for (const layer of manifest.layers) {
    compressedBytes += layer.size;
    await pipeline(createReadStream(blob(layer.digest)), createGunzip(), new Writable({
      write(chunk: Buffer, _encoding, callback) {
        uncompressedBytes += chunk.length;
        callback();
      },
    }));
  }
  return { compressedBytes, uncompressedBytes };
}

export function formatMiB(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

async function ensureTools(debug: boolean, log: (line: string) => void): Promise<void> {
  if (!(await which('patchelf').then(() => true, () => false))) {
    if (process.getuid?.() !== 0) throw new Error('patchelf is missing: install it (apt-get install patchelf) and run again');
    log('executor-image: installing patchelf');
    await run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'patchelf'], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  for (const tool of ['gcc', 'strip', 'ldd']) {
    await which(tool).catch(() => { throw new Error(`${tool} is missing: the launchers are compiled with gcc -static and node is stripped (apt-get install gcc libc6-dev binutils)`); });
  }
  if (!existsSync(CA_BUNDLE)) throw new Error(`${CA_BUNDLE} is missing: apt-get install ca-certificates`);
  if (debug && !existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: the debug variant needs busybox-static (apt-get install busybox-static)`);
}

async function which(name: string): Promise<string> {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/sbin', '/bin'])) {
    const path = join(dir || '.', name);
    if (existsSync(path)) return path;
  }
  throw new Error(`${name} is not installed`);
}

async function findFiles(dir: string, match: (name: string) => boolean): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await findFiles(path, match)));
    else if (entry.isFile() && match(entry.name)) found.push(path);
  }
  return found;
}

interface RunOptions {
  /** Let the tool's output through (kiln's build log) rather than collecting it. */
  inherit?: boolean;
  env?: NodeJS.ProcessEnv;
}

function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<{ stdout: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', options.inherit ? 'inherit' : 'pipe', options.inherit ? 'inherit' : 'pipe'], env: options.env ?? process.env });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) return resolvePromise({ stdout: Buffer.concat(out).toString('utf8') });
      const output = Buffer.concat(err).toString('utf8').trim().split('\n').slice(-40).join('\n');
      reject(new Error(`${command} ${args.join(' ')} exited with ${code ?? signal}${output ? `:\n${output}` : ''}`));
    });
  });
}

function parseArgs(argv: readonly string[], root: string): ExecutorImageOptions {
  const options: ExecutorImageOptions = { root, out: join(root, 'dist', 'executor-image'), destinations: [], kilnArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined];
    const value = () => inline ?? argv[++i] ?? usage(`${flag} needs a value`);
    switch (flag) {
      case '--out': options.out = resolve(value()); break;
      case '--destination': (options.destinations as string[]).push(value()); break;
      case '--variant': {
        const v = value();
        if (v !== 'all' && !VARIANTS.includes(v as Variant)) usage(`--variant is executor, debug or all, not ${v}`);
        options.variants = v === 'all' ? VARIANTS : [v as Variant];
        break;
      }
      case '--node': options.node = resolve(value()); break;
      case '--insecure': case '--skip-tls-verify': (options.kilnArgs as string[]).push(flag); break;
      case '--help': usage(); break;
      default: usage(`unknown flag ${flag}`);
    }
  }
  return options;
}

function usage(problem?: string): never {
  const text = 'usage: npm run executor-image -- [--out DIR] [--destination REF]... [--variant executor|debug|all] [--node PATH] [--insecure] [--skip-tls-verify]';
  if (problem) {
    process.stderr.write(`executor-image: ${problem}\n${text}\n`);
    process.exit(2);
  }
  process.stdout.write(text + '\n');
  process.exit(0);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  buildExecutorImage(parseArgs(process.argv.slice(2), root)).then(
    (result) => {
      for (const v of result.variants) process.stdout.write(`${v.variant}\t${v.digest}\t${v.compressedBytes}\t${v.uncompressedBytes}\n`);
    },
    (error: unknown) => {
      process.stderr.write(`executor-image: ${error instanceof Error ? error.message : String(error)}\n`);
      process.exit(1);
    },
  );
}
