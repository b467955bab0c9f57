// Runs a built image the way a container runtime would, with runc (crun fails on this
// machine's cgroups), so tests see what a user's container would print.
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { umociUnpack } from './umoci.js';

export interface ImageRun {
  stdout: string;
  stderr: string;
  code: number;
}

/**
 * Unpacks `layoutDir:tag` with umoci and runs it with runc. Without `args` the image's own
 * entrypoint and command run (as umoci wrote them into the bundle's config).
 */
export async function runImage(layoutDir: string, tag: string, args?: string[]): Promise<ImageRun> {
  const bundle = await mkdtemp(join(tmpdir(), 'kiln-runc-'));
  try {
    await umociUnpack(layoutDir, tag, bundle);
    const configPath = join(bundle, 'config.json');
    const spec = JSON.parse(await readFile(configPath, 'utf8')) as { process: { terminal: boolean; args: string[] } };
    spec.process.terminal = false;
    if (args) spec.process.args = args;
    await writeFile(configPath, JSON.stringify(spec));
    const id = `kiln-test-${randomBytes(4).toString('hex')}`;
    const result = await runTool('runc', ['run', '--bundle', bundle, id]);
    await runTool('runc', ['delete', '--force', id]);
    return result;
  } finally {
    await rm(bundle, { recursive: true, force: true });
  }
}

function runTool(command: string, args: string[]): Promise<ImageRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), code: code ?? -1 }));
  });
}
