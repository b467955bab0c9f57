// Certificates made with openssl rather than kiln's code: a CA and a server leaf for the TLS
// registry, and a self-signed signing certificate for the token issuer.
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from './process.js';

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface ServerCertificates {
  /** PEM of the CA that signed the server certificate: what clients must trust. */
  caCertPath: string;
  certPath: string;
  keyPath: string;
  /** A directory holding `ca.crt`, the layout skopeo's `--cert-dir` and docker's certs.d expect. */
  certDir: string;
}

/** A CA plus a leaf for 127.0.0.1 and localhost, so clients verify a real chain. */
export async function makeServerCertificates(dir: string): Promise<ServerCertificates> {
  await mkdir(dir, { recursive: true });
  const caKey = join(dir, 'ca.key');
  const caCertPath = join(dir, 'ca.pem');
  const keyPath = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const certPath = join(dir, 'server.pem');
  const ext = join(dir, 'server.ext');

  await run('openssl', [
    'req', '-x509', ...EC_KEY, '-keyout', caKey, '-out', caCertPath, '-days', '2',
    '-subj', '/CN=kiln test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run('openssl', ['req', ...EC_KEY, '-keyout', keyPath, '-out', csr, '-subj', '/CN=127.0.0.1']);
  await writeFile(ext, [
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
    '',
  ].join('\n'));
  await run('openssl', [
    'x509', '-req', '-in', csr, '-CA', caCertPath, '-CAkey', caKey,
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '2', '-extfile', ext, '-out', certPath,
  ]);

  const certDir = join(dir, 'cert-dir');
  await mkdir(certDir);
  await copyFile(caCertPath, join(certDir, 'ca.crt'));
  return { caCertPath, certPath, keyPath, certDir };
}

export interface SigningCertificate {
  certPath: string;
  keyPath: string;
}

/** An ES256 key and a self-signed certificate for it: distribution's `rootcertbundle`. */
export async function makeSigningCertificate(dir: string): Promise<SigningCertificate> {
  await mkdir(dir, { recursive: true });
  const keyPath = join(dir, 'token-signing.key');
  const certPath = join(dir, 'token-signing.pem');
  await run('openssl', [
    'req', '-x509', ...EC_KEY, '-keyout', keyPath, '-out', certPath, '-days', '2',
    '-subj', '/CN=kiln test token issuer',
  ]);
  return { certPath, keyPath };
}
