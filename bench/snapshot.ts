// Snapshot speed of kiln against GNU tar, on a Debian bookworm root (extracted by kiln) that a
// RUN-like step fills with 100,000 small files in 2,000 directories (node_modules-like text,
// 0.2–4 KiB each). Per snapshot mode:
//   (a) trivial: the snapshot (scan + layer write) after the next step, which changes one file;
//   (b) create:  the snapshot after the step that made the 100,000 files, layer gzip-compressed
//                (level 1, kiln's default) — against `tar -cf - <files> | gzip -1 > file`;
//   (c) extract: kiln's extractLayer of that layer into an empty directory, keeping the file
//                index as a build does — against `tar -xzf` of tar's own archive.
// kiln runs in child processes so that their peak RSS is kiln's own: one does what one build
// stage does (extract the base, snapshot after each step), another extracts the layer, as a
// build starting from that image would. Each step runs in a process of its own, as a RUN
// does. Dirty pages are written back (sync) before every measured phase, on both sides. The
// machine is shared and noisy: kiln and tar run back to back, each run gives its own ratios,
// and the summary takes the median of every figure over the runs (RSS: the highest).
// MB is 10^6 bytes. The work directory is $KILN_BENCH_DIR (default the system's temp directory):
// small-file extraction is bound by the filesystem, so both sides always share one.
//
// Usage: node dist/bench/snapshot.js [--runs N] [--files N]
// (internal roles: `snapshot MODE WORK LAYOUT TAG FILES`, `extract LAYER-JSON TARGET`,
//  `step create|touch ROOT FILES`)
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { debianLayout } from '../integration/harness/index.js';
import { fileLayer } from '../src/oci/blob-layer.js';
import type { Digest } from '../src/oci/digest.js';
import { layoutImage } from '../src/oci/layout.js';
import { extractImage, extractLayer } from '../src/snapshot/extract.js';
import { FileIndex } from '../src/snapshot/file-index.js';
import type { SnapshotMode } from '../src/snapshot/hasher.js';
import { IgnoreList } from '../src/snapshot/ignore.js';
import { writeLayer } from '../src/snapshot/layer-writer.js';
import { Snapshotter } from '../src/snapshot/snapshotter.js';

const MB = 1e6;
const SELF = fileURLToPath(import.meta.url);
const MODES: readonly SnapshotMode[] = ['full', 'redo', 'time'];
const DIRECTORIES = 2000;
/** Where the step puts its files, inside the root. */
const APP = 'app';

const since = (started: number): number => (performance.now() - started) / 1000;
const peakRss = (): number => process.resourceUsage().maxRSS;

/* ---------- the steps: plain fs calls, like a RUN's npm install ---------- */

/** A small deterministic PRNG (mulberry32): the same tree on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** JavaScript-looking text to cut files from: it compresses about as well as node_modules does. */
function sourceText(random: () => number, size: number): Buffer {
  const words = ['function', 'return', 'const', 'let', 'if', 'else', 'for', 'require', 'module.exports', 'this', 'new', 'throw', 'await', 'async', '=>', '===', '{', '}', '(', ')', ';', '\n', '  ', 'null', 'undefined', 'true', 'false'];
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const word = random() < 0.6 ? words[Math.floor(random() * words.length)]! : `${'abcdefghijklmnopqrstuvwxyz'[Math.floor(random() * 26)]}${Math.floor(random() * 1e6).toString(36)}`;
    parts.push(word, ' ');
    length += word.length + 1;
  }
  return Buffer.from(parts.join('').slice(0, size));
}

/** `files` files in DIRECTORIES directories: app/node_modules/pkg-NNN/dir-NN/file-N.js. */
function stepCreate(root: string, files: number): void {
  const random = prng(42);
  const text = sourceText(random, 4 << 20);
  const perDir = Math.ceil(files / DIRECTORIES);
  const packages = DIRECTORIES / 10;
  let made = 0;
  for (let d = 0; d < DIRECTORIES && made < files; d++) {
    const dir = join(root, APP, 'node_modules', `pkg-${String(d % packages).padStart(3, '0')}`, `dir-${String(Math.floor(d / packages)).padStart(2, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < perDir && made < files; f++, made++) {
      const size = 200 + Math.floor(random() * (4096 - 200));
      const at = Math.floor(random() * (text.length - size));
      writeFileSync(join(dir, `file-${f}.js`), text.subarray(at, at + size));
    }
  }
}

function stepTouch(root: string): void {
  const path = join(root, 'etc/bash.bashrc');
  writeFileSync(path, readFileSync(path, 'utf8') + '# one more line\n');
}

function runStep(kind: 'create' | 'touch', root: string, files: number): number {
  const started = performance.now();
  const result = spawnSync(process.execPath, [SELF, 'step', kind, root, String(files)], { stdio: 'inherit' });
  if (result.status !== 0) throw new Error(`the ${kind} step failed with ${result.status ?? result.signal}`);
  return since(started);
}

function settle(): void {
  spawnSync('sync', [], { stdio: 'ignore' });
}

/* ---------- kiln, as one build stage ---------- */

/** The create layer, as the extract worker needs it. */
interface LayerFile {
  path: string;
  digest: Digest;
  diffId: Digest;
  size: number;
  mediaType: string;
}

interface SnapshotResult {
  baseExtractSeconds: number;
  stepSeconds: number;
  createScanSeconds: number;
  createWriteSeconds: number;
  createChanged: number;
  createUncompressedBytes: number;
  layer: LayerFile;
  trivialScanSeconds: number;
  trivialWriteSeconds: number;
  trivialChanged: string[];
  maxRssKiB: number;
  /** Peak RSS (KiB) as it stood after each phase: where the memory went. */
  peakAfter: Record<string, number>;
}

async function snapshotWorker(mode: SnapshotMode, work: string, layoutDir: string, tag: string, files: number): Promise<SnapshotResult> {
  const root = join(work, 'root');
  const ignore = await IgnoreList.create({ rootDir: root });
  const index = new FileIndex();
  let started = performance.now();
  await extractImage(await layoutImage(layoutDir, { refName: tag }), { rootDir: root, ignore, index, spoolDir: work });
  const baseExtractSeconds = since(started);
  const peakAfter: Record<string, number> = { base: peakRss() };
  const snapshotter = new Snapshotter({ rootDir: root, ignore, mode });
  await snapshotter.init(index);
  const layerOptions = { compression: 'gzip' as const, flavor: 'oci' as const, tmpDir: join(work, 'layers') };

  // (b) the step that creates the files.
  const stepSeconds = runStep('create', root, files);
  settle();
  started = performance.now();
  const created = await snapshotter.scan();
  const createScanSeconds = since(started);
  peakAfter.createScan = peakRss();
  started = performance.now();
  const createLayer = await writeLayer({ rootDir: root, changes: created, index: snapshotter.index }, layerOptions);
  const createWriteSeconds = since(started);
  if (createLayer.kind !== 'layer') throw new Error('the create step gave no layer');
  snapshotter.recordContent(createLayer.contentHashes);
  peakAfter.createWrite = peakRss();

  // (a) the next step, which changes one file.
  runStep('touch', root, files);
  settle();
  started = performance.now();
  const touched = await snapshotter.scan();
  const trivialScanSeconds = since(started);
  started = performance.now();
  const trivialLayer = await writeLayer({ rootDir: root, changes: touched, index: snapshotter.index }, layerOptions);
  const trivialWriteSeconds = since(started);
  if (trivialLayer.kind === 'layer') snapshotter.recordContent(trivialLayer.contentHashes);
  await snapshotter.close();
  peakAfter.trivial = peakRss();

  const { layer } = createLayer;
  return {
    baseExtractSeconds,
    stepSeconds,
    createScanSeconds,
    createWriteSeconds,
    createChanged: created.changed.length,
    createUncompressedBytes: createLayer.uncompressedSize,
    layer: { path: createLayer.path, digest: layer.digest, diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType },
    trivialScanSeconds,
    trivialWriteSeconds,
    trivialChanged: [...touched.changed, ...touched.deleted.map((path) => `-${path}`)],
    maxRssKiB: peakRss(),
    peakAfter,
  };
}

/* ---------- kiln, extracting the layer ---------- */

interface ExtractResult {
  seconds: number;
  entries: number;
  maxRssKiB: number;
}

async function extractWorker(layer: LayerFile, target: string): Promise<ExtractResult> {
  settle();
  const started = performance.now();
  const stats = await extractLayer(fileLayer(layer), { rootDir: target, ignore: IgnoreList.of([]), index: new FileIndex() });
  return { seconds: since(started), entries: stats.entries, maxRssKiB: peakRss() };
}

/* ---------- the orchestrator ---------- */

function runWorker<T>(args: string[]): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SELF, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`the kiln worker (${args[0]} ${args[1]}) exited with ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!) as T);
    });
  });
}

/** Wall-clock seconds of a shell pipeline, after a sync; fails loudly if any part of it fails. */
function timeShell(script: string): number {
  settle();
  const started = performance.now();
  const result = spawnSync('bash', ['-c', `set -euo pipefail; ${script}`], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (result.status !== 0) throw new Error(`"${script}" exited with ${result.status ?? result.signal}`);
  return since(started);
}

interface Row {
  mode: SnapshotMode;
  trivial: number;
  trivialScan: number;
  create: number;
  createScan: number;
  tarCreate: number;
  extract: number;
  tarExtract: number;
  layerBytes: number;
  tarBytes: number;
  /** kiln's time over tar's, in this run. */
  createX: number;
  extractX: number;
  /** KiB: the stage-like worker, the extracting worker. */
  rssSnapshot: number;
  rssExtract: number;
}

async function measure(mode: SnapshotMode, dir: string, layout: { dir: string; tag: string }, files: number): Promise<Row> {
  const work = join(dir, mode);
  mkdirSync(work);
  try {
    const snap = await runWorker<SnapshotResult>(['snapshot', mode, work, layout.dir, layout.tag, String(files)]);
    // tar does the same work on the same files, on the same filesystem.
    const archive = join(work, 'tar.tgz');
    const tarCreate = timeShell(`tar -C '${join(work, 'root')}' -cf - ${APP} | gzip -1 > '${archive}'`);
    const kilnTarget = join(work, 'kiln-extract');
    const extracted = await runWorker<ExtractResult>(['extract', JSON.stringify(snap.layer), kilnTarget]);
    const tarTarget = join(work, 'tar-extract');
    mkdirSync(tarTarget);
    const tarExtract = timeShell(`tar -xzf '${archive}' -C '${tarTarget}'`);
    const mib = (kib: number) => ((kib * 1024) / MB).toFixed(0);
    console.log(
      `  ${mode}: base extracted in ${s(snap.baseExtractSeconds)} s; create step ${s(snap.stepSeconds)} s, ${snap.createChanged} paths changed, ` +
        `${snap.createUncompressedBytes} bytes of tar; trivial step changed ${snap.trivialChanged.join(' ')}; ${extracted.entries} entries extracted; ` +
        `peak RSS MB after ${Object.entries(snap.peakAfter).map(([phase, kib]) => `${phase} ${mib(kib)}`).join(', ')}; extract ${mib(extracted.maxRssKiB)}`,
    );
    return {
      mode,
      trivial: snap.trivialScanSeconds + snap.trivialWriteSeconds,
      trivialScan: snap.trivialScanSeconds,
      create: snap.createScanSeconds + snap.createWriteSeconds,
      createScan: snap.createScanSeconds,
      tarCreate,
      extract: extracted.seconds,
      tarExtract,
      layerBytes: snap.layer.size,
      tarBytes: statSync(archive).size,
      createX: (snap.createScanSeconds + snap.createWriteSeconds) / tarCreate,
      extractX: extracted.seconds / tarExtract,
      rssSnapshot: snap.maxRssKiB,
      rssExtract: extracted.maxRssKiB,
    };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const s = (seconds: number): string => seconds.toFixed(2);
const x = (ratio: number): string => ratio.toFixed(2);
const rssMB = (row: Row): number => (Math.max(row.rssSnapshot, row.rssExtract) * 1024) / MB;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One mode over the runs: the median of every time and ratio, the highest RSS. */
function summary(rows: Row[]): Row {
  const mid = (key: keyof Row) => median(rows.map((r) => r[key] as number));
  const max = (key: keyof Row) => Math.max(...rows.map((r) => r[key] as number));
  return {
    ...rows[0]!,
    trivial: mid('trivial'),
    trivialScan: mid('trivialScan'),
    create: mid('create'),
    createScan: mid('createScan'),
    tarCreate: mid('tarCreate'),
    extract: mid('extract'),
    tarExtract: mid('tarExtract'),
    createX: mid('createX'),
    extractX: mid('extractX'),
    rssSnapshot: max('rssSnapshot'),
    rssExtract: max('rssExtract'),
  };
}

function printTable(rows: Row[]): void {
  const header = ['mode', 'trivial s (scan)', 'create s (scan)', 'tar+gzip s', 'create x', 'extract s', 'tar -x s', 'extract x', 'layer MB (tar.gz)', 'rss MB (stage / extract)'];
  const lines = rows.map((r) => [
    r.mode,
    `${s(r.trivial)} (${s(r.trivialScan)})`,
    `${s(r.create)} (${s(r.createScan)})`,
    s(r.tarCreate),
    x(r.createX),
    s(r.extract),
    s(r.tarExtract),
    x(r.extractX),
    `${(r.layerBytes / MB).toFixed(1)} (${(r.tarBytes / MB).toFixed(1)})`,
    `${((r.rssSnapshot * 1024) / MB).toFixed(0)} / ${((r.rssExtract * 1024) / MB).toFixed(0)}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  for (const line of [header, ...lines]) console.log(line.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}

async function orchestrate(argv: string[]): Promise<void> {
  const flag = (name: string, fallback: number): number => {
    const at = argv.indexOf(name);
    return at === -1 ? fallback : Number(argv[at + 1]);
  };
  const runs = flag('--runs', 3);
  const files = flag('--files', 100_000);
  const layout = await debianLayout();
  const dir = mkdtempSync(join(process.env.KILN_BENCH_DIR ?? tmpdir(), 'kiln-bench-snapshot-'));
  const fsType = spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).stdout.trim();
  const all: Row[] = [];
  try {
    for (let run = 1; run <= runs; run++) {
      console.log(`run ${run}/${runs}: Debian bookworm + ${files} files in ${DIRECTORIES} directories, in ${dir} (${fsType}); load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
      const rows: Row[] = [];
      for (const mode of MODES) rows.push(await measure(mode, dir, layout, files));
      printTable(rows);
      all.push(...rows);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const summaries = MODES.map((mode) => summary(all.filter((r) => r.mode === mode)));
  console.log(`median of ${runs} runs (RSS: the highest):`);
  printTable(summaries);
  const full = summaries.find((r) => r.mode === 'full')!;
  console.log(`snapshot: trivial ${s(full.trivial)} s; create ${x(full.createX)} x tar+gzip; extract ${x(full.extractX)} x tar; rss ${rssMB(full).toFixed(0)} MB`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  switch (argv[0]) {
    case 'step':
      if (argv[1] === 'create') stepCreate(argv[2]!, Number(argv[3]));
      else stepTouch(argv[2]!);
      return;
    case 'snapshot':
      process.stdout.write(JSON.stringify(await snapshotWorker(argv[1] as SnapshotMode, argv[2]!, argv[3]!, argv[4]!, Number(argv[5]))) + '\n');
      return;
    case 'extract':
      process.stdout.write(JSON.stringify(await extractWorker(JSON.parse(argv[1]!) as LayerFile, argv[2]!)) + '\n');
      return;
    default:
      await orchestrate(argv);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  process.exitCode = 1;
});
