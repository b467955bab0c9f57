// The first process of a chroot RUN's PID namespace. It runs the host's Node (the image may
// have no shell or no Node at all), still outside the chroot: it performs the mount plan kiln
// prepared, starts the command through setpriv and nsenter, and reports.
//
// Why a process of kiln's own as PID 1 rather than the command itself: PID 1 of a namespace
// ignores every signal it has no handler for, so `kill $$` in a RUN would do nothing and a
// command killed by a signal could not be told apart from one exiting 128+N. As PID 2 the
// command behaves as it does under the `none` isolation.
//
// The init talks to kiln over one channel, its stdout, in frames (see output.ts): the
// command's stdout and stderr, then a status (the command's result and, when it ran on an
// overlay, the overlay's opaque directories) or an error. Every other descriptor it
// inherited, fd 3 (source and plan) included, is closed before the command starts, so the
// command gets nothing but fresh pipes. When the command exits, every other process of the
// namespace is killed, so a background process cannot keep the output open and the step
// ends with its command.
//
// The source is a string because it runs in a `node -e` process with an empty environment,
// the same way whether kiln runs from TypeScript sources or compiled. It arrives with the
// plan on fd 3 rather than on the command line, which stays short for `ps`.

import type { OverlayPlan } from './overlay.js';

/** One preparation step, run in order inside the new mount namespace before the command. */
export type SetupStep =
  | { op: 'run'; argv: string[]; what: string }
  | { op: 'mkdir'; path: string; mode: number; what: string }
  | { op: 'file'; path: string; content?: string; what: string }
  | { op: 'symlink'; target: string; path: string; what: string };

export interface InitPlan {
  /** Mounted before `steps`; when that fails the command runs on the root itself (see overlay.ts). */
  overlay?: OverlayPlan;
  steps: SetupStep[];
  /** Host executable first (setpriv), ending in nsenter and the command inside the image. */
  command: string[];
  env: Record<string, string>;
}

/** The whole command line of the init: it reads `{ source, plan }` from fd 3 and runs the source. */
export const INIT_BOOTSTRAP = [
  "const fs = require('node:fs');",
  "const input = JSON.parse(fs.readFileSync(3, 'utf8'));",
  'fs.closeSync(3);',
  "process.title = 'kiln-init';",
  "new Function('plan', 'require', input.source)(input.plan, require);",
].join(' ');

/** The init's body; `plan` is an InitPlan. */
export const INIT_SOURCE = String.raw`'use strict';
const fs = require('node:fs');
const childProcess = require('node:child_process');
const FRAME = { stdout: 1, stderr: 2, status: 3, error: 4 };

function send(type, payload) {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const frame = Buffer.alloc(5 + body.length);
  frame[0] = type;
  frame.writeUInt32BE(body.length, 1);
  body.copy(frame, 5);
  let offset = 0;
  while (offset < frame.length) offset += fs.writeSync(1, frame, offset);
}

function fail(message) {
  try { send(FRAME.error, JSON.stringify({ message })); } finally { process.exit(1); }
}

process.on('uncaughtException', (error) => fail(String((error && error.message) || error)));

if (process.pid !== 1) fail('the init is not the first process of a new PID namespace');

// Descriptors kiln itself inherited (from a CI runner, say) would reach the command too.
for (const name of fs.readdirSync('/proc/self/fd')) {
  if (Number(name) <= 2) continue;
  try {
    const flags = parseInt(/flags:\s*([0-7]+)/.exec(fs.readFileSync('/proc/self/fdinfo/' + name, 'utf8'))[1], 8);
    if ((flags & 0o2000000) === 0) fs.closeSync(Number(name));
  } catch { /* gone already */ }
}

function runStep(step) {
  try {
    if (step.op === 'run') {
      childProcess.execFileSync(step.argv[0], step.argv.slice(1), { env: {}, stdio: ['ignore', 'ignore', 'pipe'] });
    } else if (step.op === 'mkdir') {
      fs.mkdirSync(step.path, { mode: step.mode });
    } else if (step.op === 'file') {
      fs.writeFileSync(step.path, step.content || '');
    } else if (step.op === 'symlink') {
      fs.symlinkSync(step.target, step.path);
    } else {
      throw new Error('unknown setup step ' + step.op);
    }
  } catch (error) {
    const detail = (error.stderr && String(error.stderr).trim()) || error.message;
    throw new Error(step.what + ' failed: ' + detail);
  }
}

// An opaque directory of the upper layer hides everything the lower one had there. Node
// cannot read the xattr that marks it, so the listings tell: an opaque directory lacks a
// lower entry that no whiteout deletes. Only directories both layers have can be opaque in
// a way that matters; nothing is below a new one in the lower layer.
function opaqueDirectories(overlay) {
  const found = [];
  const isWhiteout = (path) => {
    try {
      const stats = fs.lstatSync(path);
      return stats.isCharacterDevice() && stats.rdev === 0;
    } catch { return false; }
  };
  const isOpaque = (path) => {
    const merged = new Set(fs.readdirSync(overlay.merged + path));
    return fs.readdirSync(overlay.lower + path).some((name) => !merged.has(name) && !isWhiteout(overlay.upper + path + '/' + name));
  };
  const visit = (dir) => {
    for (const entry of fs.readdirSync(overlay.upper + dir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const path = dir + '/' + entry.name;
      let lower;
      try { lower = fs.lstatSync(overlay.lower + path); } catch { continue; }
      if (!lower.isDirectory()) continue;
      if (isOpaque(path)) found.push(path);
      else visit(path);
    }
  };
  visit('');
  return found;
}

let overlayFailure;
if (plan.overlay) {
  try {
    for (const step of plan.overlay.steps) runStep(step);
  } catch (error) {
    overlayFailure = error.message;
  }
}

function overlayReport() {
  if (!plan.overlay) return undefined;
  if (overlayFailure !== undefined) return { kind: 'unavailable', reason: overlayFailure };
  try {
    return { kind: 'mounted', opaque: opaqueDirectories(plan.overlay) };
  } catch (error) {
    return { kind: 'unreadable', reason: error.message };
  }
}

for (const step of plan.steps) {
  try {
    runStep(step);
  } catch (error) {
    fail(error.message);
  }
}

const child = childProcess.spawn(plan.command[0], plan.command.slice(1), {
  cwd: '/',
  env: plan.env,
  stdio: ['ignore', 'pipe', 'pipe'],
});
child.on('error', (error) => fail('cannot start ' + plan.command[0] + ': ' + error.message));
child.stdout.on('data', (chunk) => send(FRAME.stdout, chunk));
child.stderr.on('data', (chunk) => send(FRAME.stderr, chunk));
child.on('exit', () => {
  try { process.kill(-1, 'SIGKILL'); } catch { /* nothing else was running */ }
});
child.on('close', (code, signal) => {
  const result = signal ? { kind: 'signaled', signal } : { kind: 'exited', code };
  send(FRAME.status, JSON.stringify({ result, overlay: code === 0 ? overlayReport() : undefined }));
  process.exit(0);
});
`;
