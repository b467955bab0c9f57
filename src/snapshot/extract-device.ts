import { spawnSync } from 'node:child_process';

/**
 * What creating a device node or fifo came to. `skippable` failures are the expected ones
 * of an unprivileged build (EPERM for devices in a user namespace) or a missing tool; the
 * caller reports and skips those, like other rootless builders, and fails on the rest.
 */
export type NodeResult = { ok: true } | { ok: false; skippable: boolean; reason: string };

/**
 * Creates a character or block device or a fifo at `hostPath`. Node has no mknod(2), and a
 * native addon would be a build dependency for entries that are rare in layers (those under
 * /dev are on the ignore list and never get here), so kiln runs coreutils' `mknod` and
 * `mkfifo`: one short process per node is cheap at that rate. The path is absolute, its
 * parent was resolved inside the root by the caller and nothing exists at it yet. The node
 * is created with mode 0600; the caller sets owner, then mode, then times.
 */
export function makeNode(hostPath: string, type: 'char' | 'block' | 'fifo', devmajor: number, devminor: number): NodeResult {
  const command = type === 'fifo' ? 'mkfifo' : 'mknod';
  const args = type === 'fifo' ? ['-m', '600', '--', hostPath] : ['-m', '600', '--', hostPath, type === 'char' ? 'c' : 'b', String(devmajor), String(devminor)];
  const result = spawnSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  if (result.error !== undefined) {
    const code = (result.error as NodeJS.ErrnoException).code ?? result.error.message;
    return { ok: false, skippable: code === 'ENOENT', reason: `${command} could not be run (${code})` };
  }
  if (result.status === 0) return { ok: true };
  const stderr = (result.stderr ?? '').trim().split('\n')[0] ?? '';
  return {
    ok: false,
    skippable: /Operation not permitted|Permission denied/i.test(stderr),
    reason: stderr || `${command} exited with status ${result.status ?? result.signal}`,
  };
}
