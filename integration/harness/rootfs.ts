// The content of the harness's busybox base image, from Debian's busybox-static package: the
// static binary, its applet links (as `busybox --install -s` makes them), and the few files a
// Dockerfile's RUN, USER and WORKDIR expect to find.
import { chmod, copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { run } from './process.js';

export const BUSYBOX_BINARY = '/bin/busybox';

export async function busyboxPackageVersion(): Promise<string> {
  const { stdout } = await run('dpkg-query', ['-W', '-f=${Version}', 'busybox-static']);
  return stdout.trim();
}

export async function writeBusyboxRootfs(rootfs: string): Promise<void> {
  await mkdir(join(rootfs, 'bin'), { recursive: true });
  await copyFile(BUSYBOX_BINARY, join(rootfs, 'bin/busybox'));
  await chmod(join(rootfs, 'bin/busybox'), 0o755);

  const { stdout } = await run(BUSYBOX_BINARY, ['--list-full']);
  for (const applet of stdout.split('\n').map((l) => l.trim()).filter(Boolean)) {
    if (applet === 'bin/busybox') continue;
    const path = join(rootfs, applet);
    await mkdir(dirname(path), { recursive: true });
    await symlink(BUSYBOX_BINARY, path);
  }

  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await writeFile(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  );
  await writeFile(join(rootfs, 'etc/group'), 'root:x:0:\nnobody:x:65534:\n');
  await mkdir(join(rootfs, 'root'), { mode: 0o700 });
  await mkdir(join(rootfs, 'tmp'));
  await chmod(join(rootfs, 'tmp'), 0o1777);
}
