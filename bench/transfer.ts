// Blob transfer speed of kiln against curl, on one loopback registry (Debian's
// docker-registry). Usage: node dist/bench/transfer.js pull|push [--runs N] [--size MiB]
//   [--hash-thread on|off|auto]
//
// pull: the blob is uploaded once, then curl and kiln download it to a file in turns. kiln
// verifies every byte against the digest as part of its time; curl's time is the download
// alone. kiln does it twice per round. The last line is the way kiln's pulls bring a layer to
// disk: the registry's Layer (as fetchRemoteImage makes it) written into a new file by
// writeBlobFile, as the warmer's --cache-dir and OCI layout outputs do; its writeTo is
// RegistryClient.fetchBlob into a file sink, the download extraction's layer spool takes too
// (with a sink of its own that also tells its reader how far the file is written). The line
// before it, for comparison, pipes RegistryClient.getBlob's stream into the file: what a
// reader of Layer.compressed() gets (see transfer-worker.ts).
// push: curl and kiln upload it in turns, each time to a repository that has never seen it.
// The machine is shared and noisy, so each side's best run counts; the median of the
// per-round ratios is printed too. kiln runs in a child process (transfer-worker.js) so that
// its peak RSS is its own. `--hash-thread on|off` sets where kiln verifies a pull
// (RegistryClient's hashThread option, for both ways); auto keeps its defaults.
// Times leave out process start on both sides: curl's own time_total, kiln's from the
// client call to the last byte written (or acknowledged). MB is 10^6 bytes.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry, type RunningRegistry } from '../integration/harness/index.js';
import { run } from '../integration/harness/process.js';
import { curlPull, curlPush } from './curl.js';
import { writeRandomFile } from './random-file.js';

const MB = 1e6;
const WORKER = join(dirname(fileURLToPath(import.meta.url)), 'transfer-worker.js');

interface KilnRun {
  seconds: number;
  maxRssKiB: number;
}

interface Options {
  mode: 'pull' | 'push';
  runs: number;
  size: number;
  hashThread: 'on' | 'off' | 'auto';
}

function parseArgs(argv: string[]): Options {
  const mode = argv[0];
  const usage = 'usage: transfer.js pull|push [--runs N] [--size MiB] [--hash-thread on|off|auto]';
  if (mode !== 'pull' && mode !== 'push') throw new Error(usage);
  const flag = (name: string): string | undefined => {
    const at = argv.indexOf(name);
    return at === -1 ? undefined : argv[at + 1];
  };
  const runs = Number(flag('--runs') ?? 3);
  const size = Number(flag('--size') ?? 1024) * (1 << 20);
  const hashThread = flag('--hash-thread') ?? 'auto';
  if (!(runs >= 1) || !(size > 0) || (hashThread !== 'on' && hashThread !== 'off' && hashThread !== 'auto')) throw new Error(usage);
  return { mode, runs, size, hashThread };
}

function runKiln(args: string[]): Promise<KilnRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [WORKER, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`transfer-worker exited with ${code}`));
      resolve(JSON.parse(out) as KilnRun);
    });
  });
}

/** Lets the kernel write back dirty pages now rather than during a measured run. */
async function settle(): Promise<void> {
  await run('sync', []);
}

async function deleteBlob(registry: RunningRegistry, repo: string, digest: string): Promise<void> {
  const response = await fetch(`${registry.url}/v2/${repo}/blobs/${digest}`, { method: 'DELETE' });
  await response.arrayBuffer();
  if (response.status !== 202) throw new Error(`DELETE of ${digest} in ${repo} answered ${response.status}`);
}

const rate = (bytes: number, seconds: number): number => bytes / MB / seconds;

type Side = 'curl' | 'kiln' | 'stream';

interface Tally {
  best: number;
  ratios: number[];
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

async function bench(options: Options, registry: RunningRegistry, dir: string): Promise<{ curl: number; kiln: Tally; stream?: Tally }> {
  const source = join(dir, 'blob');
  const target = join(dir, 'pulled');
  const digest = await writeRandomFile(source, options.size);
  console.log(`blob ${digest}, ${options.size} bytes; registry ${registry.host}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const size = String(options.size);
  const sides: Side[] = options.mode === 'pull' ? ['curl', 'kiln', 'stream'] : ['curl', 'kiln'];
  let bestCurl = 0;
  const tallies = new Map<Side, Tally>(sides.map((side) => [side, { best: 0, ratios: [] }]));

  if (options.mode === 'pull') await curlPush(registry.url, 'bench/pull', source, digest);
  await settle();
  for (let round = 1; round <= options.runs; round++) {
    // Who goes first rotates, so that no side always meets another's leftovers.
    const order = sides.map((_, i) => sides[(i + round - 1) % sides.length]!);
    const seconds = new Map<Side, number>();
    const rss = new Map<Side, number>();
    for (const side of order) {
      if (options.mode === 'pull') {
        if (side === 'curl') seconds.set(side, await curlPull(`${registry.url}/v2/bench/pull/blobs/${digest}`, target));
        else {
          const via = side === 'kiln' ? 'layer' : 'stream';
          const kiln = await runKiln(['pull', registry.host, 'bench/pull', digest, size, target, options.hashThread, via]);
          seconds.set(side, kiln.seconds);
          rss.set(side, kiln.maxRssKiB);
        }
        await rm(target);
      } else {
        // A repository of its own each time, and the blob deleted after, so that every PUT
        // really carries the bytes (a HEAD would otherwise answer "exists").
        const repo = `bench/push-${side}-${round}`;
        if (side === 'curl') seconds.set(side, await curlPush(registry.url, repo, source, digest));
        else {
          const kiln = await runKiln(['push', registry.host, repo, digest, size, source]);
          seconds.set(side, kiln.seconds);
          rss.set(side, kiln.maxRssKiB);
        }
        await deleteBlob(registry, repo, digest);
      }
    }
    const curlRate = rate(options.size, seconds.get('curl')!);
    bestCurl = Math.max(bestCurl, curlRate);
    const parts = [`curl ${curlRate.toFixed(1)} MB/s`];
    for (const side of sides.filter((s) => s !== 'curl')) {
      const kilnRate = rate(options.size, seconds.get(side)!);
      const tally = tallies.get(side)!;
      tally.best = Math.max(tally.best, kilnRate);
      tally.ratios.push(kilnRate / curlRate);
      parts.push(`${side === 'kiln' ? 'kiln' : 'kiln stream'} ${kilnRate.toFixed(1)} MB/s (peak RSS ${(rss.get(side)! / 1024).toFixed(1)} MiB)`);
    }
    console.log(`run ${round}: ${parts.join(', ')}`);
  }
  return { curl: bestCurl, kiln: tallies.get('kiln')!, ...(tallies.has('stream') ? { stream: tallies.get('stream')! } : {}) };
}

function summary(label: string, kiln: Tally, curl: number): string {
  return `${label}: kiln ${kiln.best.toFixed(2)} MB/s, curl ${curl.toFixed(2)} MB/s, ratio ${(kiln.best / curl).toFixed(2)} (median of runs ${median(kiln.ratios).toFixed(2)})`;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const registry = await startRegistry('plain');
  const dir = await mkdtemp(join(tmpdir(), 'kiln-bench-'));
  try {
    const { kiln, stream, curl } = await bench(options, registry, dir);
    // The last line is the way pulls bring a layer to disk; the stream is for comparison.
    if (stream) {
      console.log(summary(`${options.mode}, RegistryClient.getBlob's stream piped into a file (for comparison)`, stream, curl));
      console.log(summary(options.mode, kiln, curl));
    } else {
      console.log(summary(options.mode, kiln, curl));
    }
  } finally {
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  process.exitCode = 1;
});
