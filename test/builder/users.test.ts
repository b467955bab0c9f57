import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveOwner, resolveUser } from '../../src/builder/users.js';
import { isKilnError } from '../../src/util/errors.js';

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  'daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin',
  '# a comment',
  'alice:x:1000:1000:Alice:/home/alice:/bin/sh',
  'bob:x:1001:100::/home/bob:/bin/sh',
  'not a passwd line',
  '2000:x:3000:3000:named by a number:/home/num:/bin/sh',
  'nohome:x:1002:1002:::/bin/sh',
  '',
].join('\n');

const GROUP = [
  'root:x:0:',
  'wheel:x:10:root,alice',
  'users:x:100:bob',
  'staff:x:50:alice,bob',
  'alice:x:1000:',
  'devs:x:4242:alice',
  '',
].join('\n');

let base: string;
let full: string;
let bare: string;
let linked: string;

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'kiln-users-'));
  full = join(base, 'full');
  await mkdir(join(full, 'etc'), { recursive: true });
  await writeFile(join(full, 'etc/passwd'), PASSWD);
  await writeFile(join(full, 'etc/group'), GROUP);
  bare = join(base, 'bare');
  await mkdir(bare);
  // An image whose user database lives elsewhere, reached by absolute symlinks that must
  // resolve inside the image, not on the host.
  linked = join(base, 'linked');
  await mkdir(join(linked, 'etc'), { recursive: true });
  await mkdir(join(linked, 'data'));
  await writeFile(join(linked, 'data/passwd'), PASSWD);
  await writeFile(join(linked, 'data/group'), GROUP);
  await symlink('/data/passwd', join(linked, 'etc/passwd'));
  await symlink('../../../../data/group', join(linked, 'etc/group'));
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('resolveUser', () => {
  const cases: [spec: string, expected: { uid: number; gid: number; groups: number[]; home: string }][] = [
    ['', { uid: 0, gid: 0, groups: [10], home: '/root' }],
    ['root', { uid: 0, gid: 0, groups: [10], home: '/root' }],
    ['0', { uid: 0, gid: 0, groups: [10], home: '/root' }],
    ['alice', { uid: 1000, gid: 1000, groups: [10, 50, 4242], home: '/home/alice' }],
    ['1000', { uid: 1000, gid: 1000, groups: [10, 50, 4242], home: '/home/alice' }],
    ['bob', { uid: 1001, gid: 100, groups: [100, 50], home: '/home/bob' }],
    ['nohome', { uid: 1002, gid: 1002, groups: [], home: '/' }],
    ['4321', { uid: 4321, gid: 0, groups: [], home: '/' }],
    ['4321:4322', { uid: 4321, gid: 4322, groups: [], home: '/' }],
    ['4321:staff', { uid: 4321, gid: 50, groups: [], home: '/' }],
    ['alice:staff', { uid: 1000, gid: 50, groups: [], home: '/home/alice' }],
    ['alice:777', { uid: 1000, gid: 777, groups: [], home: '/home/alice' }],
    ['1000:wheel', { uid: 1000, gid: 10, groups: [], home: '/home/alice' }],
    ['alice:', { uid: 1000, gid: 1000, groups: [10, 50, 4242], home: '/home/alice' }],
    [':staff', { uid: 0, gid: 50, groups: [], home: '/root' }],
    // As runc: a number matches a user of that name before a user of that uid further down.
    ['2000', { uid: 3000, gid: 3000, groups: [], home: '/home/num' }],
  ];
  for (const [spec, expected] of cases) {
    it(`resolves "${spec}"`, async () => {
      assert.deepEqual(await resolveUser(full, spec), expected);
    });
  }

  it('reads the user database through symlinks inside the image', async () => {
    assert.deepEqual(await resolveUser(linked, 'alice:staff'), { uid: 1000, gid: 50, groups: [], home: '/home/alice' });
    assert.deepEqual((await resolveUser(linked, 'bob')).groups, [100, 50]);
  });

  it('names the user and the image file when a user name does not exist', async () => {
    await assert.rejects(resolveUser(full, 'mallory'), (error: unknown) => {
      assert.ok(isKilnError(error, 'UNKNOWN_USER'));
      assert.match(error.message, /"mallory"/);
      assert.match(error.message, /\/etc\/passwd/);
      return true;
    });
  });

  it('names the group and the image file when a group name does not exist', async () => {
    await assert.rejects(resolveUser(full, 'alice:nogroup'), (error: unknown) => {
      assert.ok(isKilnError(error, 'UNKNOWN_USER'));
      assert.match(error.message, /"nogroup"/);
      assert.match(error.message, /\/etc\/group/);
      return true;
    });
  });

  it('runs numeric ids in an image without a user database, and refuses names there', async () => {
    assert.deepEqual(await resolveUser(bare, ''), { uid: 0, gid: 0, groups: [], home: '/' });
    assert.deepEqual(await resolveUser(bare, '1000'), { uid: 1000, gid: 0, groups: [], home: '/' });
    assert.deepEqual(await resolveUser(bare, '1000:1000'), { uid: 1000, gid: 1000, groups: [], home: '/' });
    await assert.rejects(resolveUser(bare, 'alice'), (error: unknown) => {
      assert.ok(isKilnError(error, 'UNKNOWN_USER'));
      assert.match(error.message, /"alice".*has no \/etc\/passwd/);
      return true;
    });
    await assert.rejects(resolveUser(bare, '1000:staff'), (error: unknown) => isKilnError(error, 'UNKNOWN_USER') && /no \/etc\/group/.test(error.message));
  });

  it('refuses malformed specs and ids out of range', async () => {
    await assert.rejects(resolveUser(full, 'a:b:c'), (error: unknown) => isKilnError(error, 'INVALID_USER'));
    await assert.rejects(resolveUser(full, '99999999999'), (error: unknown) => isKilnError(error, 'INVALID_USER'));
    await assert.rejects(resolveUser(full, 'alice:99999999999'), (error: unknown) => isKilnError(error, 'INVALID_USER'));
  });
});

describe('resolveOwner', () => {
  const cases: [spec: string, expected: { uid: number; gid: number }][] = [
    ['', { uid: 0, gid: 0 }],
    ['1000', { uid: 1000, gid: 1000 }],
    ['4321', { uid: 4321, gid: 4321 }],
    ['bob', { uid: 1001, gid: 100 }],
    ['bob:staff', { uid: 1001, gid: 50 }],
    ['alice:9', { uid: 1000, gid: 9 }],
    ['4321:4322', { uid: 4321, gid: 4322 }],
    ['4321:wheel', { uid: 4321, gid: 10 }],
  ];
  for (const [spec, expected] of cases) {
    it(`resolves "${spec}"`, async () => {
      assert.deepEqual(await resolveOwner(full, spec), expected);
    });
  }

  it('needs names to resolve, numbers never', async () => {
    await assert.rejects(resolveOwner(full, 'mallory'), (error: unknown) => isKilnError(error, 'UNKNOWN_USER') && /"mallory"/.test(error.message));
    await assert.rejects(resolveOwner(full, 'alice:nogroup'), (error: unknown) => isKilnError(error, 'UNKNOWN_USER') && /"nogroup"/.test(error.message));
    assert.deepEqual(await resolveOwner(bare, '10:20'), { uid: 10, gid: 20 });
    assert.deepEqual(await resolveOwner(bare, '10'), { uid: 10, gid: 10 });
    await assert.rejects(resolveOwner(bare, 'alice'), (error: unknown) => isKilnError(error, 'UNKNOWN_USER'));
  });
});
