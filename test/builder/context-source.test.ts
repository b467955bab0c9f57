import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseContextSource } from '../../src/builder/context/source.js';
import { parseGitFlag } from '../../src/builder/context/git-options.js';
import { redactUrl } from '../../src/builder/context/redact.js';
import { isKilnError } from '../../src/util/errors.js';

const SHA = '0123456789abcdef0123456789abcdef01234567';

function refused(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isKilnError(err, 'USAGE'), String(err));
    assert.match(err.message, message);
    assert.equal(err.message.includes('\n'), false);
    return true;
  });
}

test('paths, dir://, tar:// and tar://stdin keep their meaning', () => {
  assert.deepEqual(parseContextSource('/workspace/'), { kind: 'dir', path: '/workspace/' });
  assert.deepEqual(parseContextSource('rel/dir'), { kind: 'dir', path: 'rel/dir' });
  assert.deepEqual(parseContextSource('dir:///src'), { kind: 'dir', path: '/src' });
  assert.deepEqual(parseContextSource('tar:///ctx.tar.gz'), { kind: 'tar-file', path: '/ctx.tar.gz' });
  assert.deepEqual(parseContextSource('tar://stdin'), { kind: 'tar-stdin' });
});

test('a tar:// or plain https:// URL of an archive is a remote tar context', () => {
  assert.deepEqual(parseContextSource('tar://https://example.com/ctx.tar.gz'), { kind: 'tar-url', url: 'https://example.com/ctx.tar.gz' });
  assert.deepEqual(parseContextSource('tar://http://127.0.0.1:8080/a/ctx.tar.gz?x=1'), { kind: 'tar-url', url: 'http://127.0.0.1:8080/a/ctx.tar.gz?x=1' });
  assert.deepEqual(parseContextSource('https://example.com/archive/main.tar.gz'), { kind: 'tar-url', url: 'https://example.com/archive/main.tar.gz' });
  assert.deepEqual(parseContextSource('http://127.0.0.1:9/ctx.tgz'), { kind: 'tar-url', url: 'http://127.0.0.1:9/ctx.tgz' });
});

test('git:// is fetched over https unless GIT_PULL_METHOD says http or git, as in kaniko', () => {
  assert.deepEqual(parseContextSource('git://github.com/acme/app.git'), { kind: 'git', url: 'https://github.com/acme/app.git' });
  assert.deepEqual(parseContextSource('git://github.com/acme/app.git', { GIT_PULL_METHOD: 'http' }), { kind: 'git', url: 'http://github.com/acme/app.git' });
  assert.deepEqual(parseContextSource('git://127.0.0.1:9418/app.git', { GIT_PULL_METHOD: 'git' }), { kind: 'git', url: 'git://127.0.0.1:9418/app.git' });
  // kaniko falls back to https for any other value.
  assert.deepEqual(parseContextSource('git://github.com/acme/app.git', { GIT_PULL_METHOD: 'ftp' }), { kind: 'git', url: 'https://github.com/acme/app.git' });
});

test('the fragment names a ref, a commit, a ref and a commit, or a directory', () => {
  const base = 'git://github.com/acme/app.git';
  assert.deepEqual(parseContextSource(`${base}#refs/heads/mybranch`), { kind: 'git', url: 'https://github.com/acme/app.git', ref: 'refs/heads/mybranch' });
  assert.deepEqual(parseContextSource(`${base}#${SHA.toUpperCase()}`), { kind: 'git', url: 'https://github.com/acme/app.git', commit: SHA });
  assert.deepEqual(parseContextSource(`${base}#refs/heads/mybranch#${SHA}`), { kind: 'git', url: 'https://github.com/acme/app.git', ref: 'refs/heads/mybranch', commit: SHA });
  assert.deepEqual(parseContextSource(`${base}#refs/heads/b:sub/dir`), { kind: 'git', url: 'https://github.com/acme/app.git', ref: 'refs/heads/b', subDir: 'sub/dir' });
  assert.deepEqual(parseContextSource(`${base}#:./sub//dir/`), { kind: 'git', url: 'https://github.com/acme/app.git', subDir: 'sub/dir' });
  assert.deepEqual(parseContextSource(`${base}#main`), { kind: 'git', url: 'https://github.com/acme/app.git', ref: 'main' });
  assert.deepEqual(parseContextSource(`${base}#`), { kind: 'git', url: 'https://github.com/acme/app.git' });
});

test('an http(s) URL ending in .git or carrying a #fragment is a git repository', () => {
  assert.deepEqual(parseContextSource('https://gitlab.example.com/group/app.git'), { kind: 'git', url: 'https://gitlab.example.com/group/app.git' });
  assert.deepEqual(parseContextSource('http://127.0.0.1:8080/app.git/'), { kind: 'git', url: 'http://127.0.0.1:8080/app.git/' });
  assert.deepEqual(parseContextSource('https://example.com/acme/app#refs/heads/b'), { kind: 'git', url: 'https://example.com/acme/app', ref: 'refs/heads/b' });
  // GIT_PULL_METHOD is about git:// only.
  assert.deepEqual(parseContextSource('https://example.com/app.git', { GIT_PULL_METHOD: 'http' }), { kind: 'git', url: 'https://example.com/app.git' });
});

test('credentials written into a git URL are moved out of it', () => {
  assert.deepEqual(parseContextSource('https://bot:s%40cret@example.com/app.git#main'), {
    kind: 'git',
    url: 'https://example.com/app.git',
    urlCredentials: { username: 'bot', password: 's@cret' },
    ref: 'main',
  });
});

test('bad fragments are one sentence naming --context', () => {
  const base = 'git://github.com/acme/app.git';
  refused(() => parseContextSource(`${base}#a#${SHA}#b`), /^--context git:\/\/github\.com\/acme\/app\.git#a#.*: has more than two #parts; write REPO\.git#REF/);
  refused(() => parseContextSource(`${base}#main#abc123`), /abc123 after the second # is not a full commit id;/);
  refused(() => parseContextSource(`${base}#--upload-pack=evil`), /--upload-pack=evil is not a git ref name;/);
  refused(() => parseContextSource(`${base}#a..b`), /a\.\.b is not a git ref name;/);
  refused(() => parseContextSource(`${base}#main:../../etc`), /the directory \.\.\/\.\.\/etc must stay inside the repository;/);
  refused(() => parseContextSource(`${base}#main:/abs`), /the directory \/abs must stay inside the repository;/);
  refused(() => parseContextSource('git://'), /^--context git:\/\/ is not a valid URL; write it as SCHEME:\/\/HOST\/PATH\.$/);
  refused(() => parseContextSource('tar://https://'), /^--context tar:\/\/https:\/\/ is not a valid URL;/);
});

test('kaniko schemes kiln does not fetch are refused by name', () => {
  refused(() => parseContextSource('gs://bucket/ctx.tar.gz'), /^--context gs:\/\/bucket\/ctx\.tar\.gz: gs:\/\/ contexts \(Google Cloud Storage\) are not supported by kiln;/);
  refused(() => parseContextSource('s3://bucket/ctx.tar.gz'), /^--context s3:\/\/bucket\/ctx\.tar\.gz: s3:\/\/ contexts \(Amazon S3\) are not supported by kiln;/);
  refused(() => parseContextSource('az://container/ctx.tar.gz'), /az:\/\/ contexts \(Azure Blob Storage\) are not supported by kiln;/);
  refused(() => parseContextSource('ftp://host/ctx.tar.gz'), /^--context ftp:\/\/host\/ctx\.tar\.gz: ftp:\/\/ contexts are not supported;/);
  refused(() => parseContextSource('ssh://user:pw@host/ctx'), /^--context ssh:\/\/\*\*\*@host\/ctx: ssh:\/\/ contexts are not supported;/);
});

test('--git takes kaniko keys, one per flag or comma-separated', () => {
  assert.deepEqual(parseGitFlag(undefined), { singleBranch: false, recurseSubmodules: false, insecureSkipTls: false });
  assert.deepEqual(parseGitFlag(['branch=main,single-branch=true,recurse-submodules=1,insecure-skip-tls=T']), {
    branch: 'main',
    singleBranch: true,
    recurseSubmodules: true,
    insecureSkipTls: true,
  });
  assert.deepEqual(parseGitFlag(['branch=release', 'recurse-submodules=true', 'recurse-submodules=False']), {
    branch: 'release',
    singleBranch: false,
    recurseSubmodules: false,
    insecureSkipTls: false,
  });
  assert.equal(parseGitFlag('branch=a,b').branch, 'a,b');
  assert.equal(parseGitFlag('branch=feature=x').branch, 'feature=x');
  assert.equal(parseGitFlag(['branch=x', 'branch=']).branch, undefined);
});

test('a bad --git value is one sentence naming --git', () => {
  refused(() => parseGitFlag(['depth=1']), /^--git depth=1: depth is not a --git option; use branch=NAME, single-branch=BOOL, recurse-submodules=BOOL or insecure-skip-tls=BOOL\.$/);
  refused(() => parseGitFlag(['branch=main,Branch=x']), /^--git branch=main,Branch=x: Branch is not a --git option;/);
  refused(() => parseGitFlag(['single-branch=yes']), /^--git single-branch=yes: single-branch takes true or false, not yes\.$/);
  refused(() => parseGitFlag(['insecure-skip-tls=']), /insecure-skip-tls takes true or false, not nothing\.$/);
  refused(() => parseGitFlag(['main']), /^--git main: main is not KEY=VALUE;/);
  refused(() => parseGitFlag(['']), /^--git : an empty option is not KEY=VALUE;/);
});

test('credentials in URLs are hidden wherever they appear in a message', () => {
  assert.equal(redactUrl('https://bot:tok@example.com/a.git and http://u@h/x'), 'https://***@example.com/a.git and http://***@h/x');
  assert.equal(redactUrl('git://example.com/a.git#main'), 'git://example.com/a.git#main');
});
