// A root filesystem described path by path, so tests can compare what kiln wrote with what
// umoci unpacks from the same layers.
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/** What is compared for every path. Times are not: a layer carries mtimes, umoci sets atimes. */
export interface TreeNode {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  sha256?: string;
  link?: string;
  rdev?: number;
}

/** Every path below `root` (the root itself left out: umoci gives a bundle's root its own mode). */
export function describeTree(root: string, mapId: (id: number) => number = (id) => id): Map<string, TreeNode> {
  const nodes = new Map<string, TreeNode>();
  const visit = (path: string) => {
    const full = path === '/' ? root : join(root, path);
    const stats = lstatSync(full);
    const type = stats.isFile() ? 'file' : stats.isDirectory() ? 'dir' : stats.isSymbolicLink() ? 'symlink' : stats.isCharacterDevice() ? 'char' : stats.isBlockDevice() ? 'block' : stats.isFIFO() ? 'fifo' : 'other';
    const node: TreeNode = { type, mode: stats.mode & 0o7777, uid: mapId(stats.uid), gid: mapId(stats.gid) };
    if (type === 'file') {
      node.size = stats.size;
      node.sha256 = createHash('sha256').update(readFileSync(full)).digest('hex');
    }
    if (type === 'symlink') node.link = readlinkSync(full);
    if (type === 'char' || type === 'block') node.rdev = stats.rdev;
    nodes.set(path, node);
    if (type === 'dir') for (const name of readdirSync(full).sort()) visit(path === '/' ? '/' + name : path + '/' + name);
  };
  visit('/');
  nodes.delete('/');
  return nodes;
}

/** One field of one path where what the layers say (umoci's unpack) and the disk differ. */
export interface TreeDifference {
  path: string;
  field: string;
  layer: unknown;
  disk: unknown;
}

export function treeDifferences(layers: Map<string, TreeNode>, disk: Map<string, TreeNode>): TreeDifference[] {
  const found: TreeDifference[] = [];
  for (const path of [...new Set([...layers.keys(), ...disk.keys()])].sort()) {
    const a = layers.get(path);
    const b = disk.get(path);
    if (a === undefined || b === undefined) {
      found.push({ path, field: 'exists', layer: a !== undefined, disk: b !== undefined });
      continue;
    }
    for (const field of ['type', 'mode', 'uid', 'gid', 'size', 'sha256', 'link', 'rdev'] as const) {
      if (a[field] !== b[field]) found.push({ path, field, layer: a[field], disk: b[field] });
    }
  }
  return found;
}
