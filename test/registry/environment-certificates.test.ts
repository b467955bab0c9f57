import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import { certificatesNotBundled, environmentCertificates } from '../../src/registry/transport.js';

const PEM = (name: string) => `-----BEGIN CERTIFICATE-----\n${name}\n-----END CERTIFICATE-----\n`;

test('SSL_CERT_FILE and every certificate file in the SSL_CERT_DIR directories are read, as Go reads them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kiln-certs-'));
  try {
    mkdirSync(join(dir, 'certs'));
    mkdirSync(join(dir, 'more'));
    writeFileSync(join(dir, 'bundle.crt'), PEM('bundle'));
    writeFileSync(join(dir, 'certs', 'b-corp.crt'), PEM('corp'));
    writeFileSync(join(dir, 'certs', 'a-readme.txt'), 'not a certificate');
    mkdirSync(join(dir, 'certs', 'subdir'));
    writeFileSync(join(dir, 'more', 'other.pem'), PEM('other'));
    // The same certificate again, as distributions keep it (a bundle holding it too).
    writeFileSync(join(dir, 'more', 'zz-bundle.crt'), PEM('corp') + PEM('other'));
    const pems = environmentCertificates({
      SSL_CERT_FILE: join(dir, 'bundle.crt'),
      SSL_CERT_DIR: `${join(dir, 'certs')}:${join(dir, 'missing')}:${join(dir, 'more')}`,
    });
    assert.deepEqual(pems, [PEM('bundle'), PEM('corp'), PEM('other')]);
    assert.deepEqual(environmentCertificates({}), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('certificates Node already trusts are left out, however their lines are wrapped; new ones are kept whole', () => {
  const root = rootCertificates[0]!;
  const body = root.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  const rewrapped = `-----BEGIN CERTIFICATE-----\n${body.match(/.{1,76}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
  assert.notEqual(rewrapped, root);
  assert.deepEqual(certificatesNotBundled([rewrapped, root]), []);
  // A file holding a known certificate and a new one stays as it is.
  assert.deepEqual(certificatesNotBundled([rewrapped, PEM('corp'), root + PEM('private')]), [PEM('corp'), root + PEM('private')]);
});
