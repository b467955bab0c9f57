// Blob transfer speed of kiln against curl, on one loopback registry (Debian's
// docker-registry). Usage: node dist/bench/transfer.js pull|push [--runs N] [--size MiB]
//   [--hash-thread on|off|auto]
//
// pull: the blob is uploaded once, then curl and kiln download it in turns.
// push: curl and kiln upload it in turns, each time to a repository that has never seen it.
// The machine is shared and noisy, so each side's best run counts. kiln runs in a child
// process (transfer-worker.js) so that its peak RSS is its own. `--hash-thread on|off` sets
// where kiln verifies a pull (RegistryClient's hashThread option); auto keeps its default.
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
  bytes: number;
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

async function bench(options: Options, registry: RunningRegistry, dir: string): Promise<{ kiln: number; curl: number }> {
  const source = join(dir, 'blob');
  const target = join(dir, 'pulled');
  const digest = await writeRandomFile(source, options.size);
  console.log(`blob ${digest}, ${options.size} bytes; registry ${registry.host}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const size = String(options.size);
  let bestKiln = 0;
  let bestCurl = 0;

  if (options.mode === 'pull') await curlPush(registry.url, 'bench/pull', source, digest);
  await settle();
  for (let round = 1; round <= options.runs; round++) {
    // Who goes first alternates, so that neither side always meets the other's leftovers.
    const order = round % 2 === 1 ? (['curl', 'kiln'] as const) : (['kiln', 'curl'] as const);
    let curlSeconds = 0;
    let kiln: KilnRun | undefined;
    for (const side of order) {
      if (options.mode === 'pull') {
        if (side === 'curl') curlSeconds = await curlPull(`${registry.url}/v2/bench/pull/blobs/${digest}`, target);
        else kiln = await runKiln(['pull', registry.host, 'bench/pull', digest, size, target, options.hashThread]);
        await rm(target);
      } else {
        // A repository of its own each time, and the blob deleted after, so that every PUT
        // really carries the bytes (a HEAD would otherwise answer "exists").
        const repo = `bench/push-${side}-${round}`;
        if (side === 'curl') curlSeconds = await curlPush(registry.url, repo, source, digest);
        else kiln = await runKiln(['push', registry.host, repo, digest, size, source]);
        await deleteBlob(registry, repo, digest);
      }
    }
    const curlRate = rate(options.size, curlSeconds);
    const kilnRate = rate(kiln!.bytes, kiln!.seconds);
    bestCurl = Math.max(bestCurl, curlRate);
    bestKiln = Math.max(bestKiln, kilnRate);
    console.log(`run ${round}: curl ${curlRate.toFixed(1)} MB/s, kiln ${kilnRate.toFixed(1)} MB/s (kiln peak RSS ${(kiln!.maxRssKiB / 1024).toFixed(1)} MiB)`);
  }
  return { kiln: bestKiln, curl: bestCurl };
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const registry = await startRegistry('plain');
  const dir = await mkdtemp(join(tmpdir(), 'kiln-bench-'));
  try {
    const { kiln, curl } = await bench(options, registry, dir);
    console.log(`${options.mode}: kiln ${kiln.toFixed(2)} MB/s, curl ${curl.toFixed(2)} MB/s, ratio ${(kiln / curl).toFixed(2)}`);
  } finally {
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : String(err));
  process.exitCode = 1;
});
