// Just enough JOSE to mint the ES256 tokens distribution 2.8 accepts. Its verifier takes the
// signing key either from an `x5c` chain that ends in a `rootcertbundle` certificate, or from
// a `kid` equal to the libtrust fingerprint of a key in that bundle.
import { createHash, createPrivateKey, sign, X509Certificate, type KeyObject } from 'node:crypto';

export type KeyHeader = 'x5c' | 'kid';

export interface Signer {
  sign(claims: object): string;
}

export function createSigner(keyPem: string, certPem: string, header: KeyHeader): Signer {
  const key: KeyObject = createPrivateKey(keyPem);
  const cert = new X509Certificate(certPem);
  const joseHeader =
    header === 'x5c'
      ? { typ: 'JWT', alg: 'ES256', x5c: [cert.raw.toString('base64')] }
      : { typ: 'JWT', alg: 'ES256', kid: libtrustKeyId(cert.publicKey.export({ type: 'spki', format: 'der' })) };
  const encodedHeader = base64url(JSON.stringify(joseHeader));
  return {
    sign(claims) {
      const input = `${encodedHeader}.${base64url(JSON.stringify(claims))}`;
      // JOSE wants r||s, not the DER form node produces by default.
      const signature = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
      return `${input}.${base64url(signature)}`;
    },
  };
}

/** libtrust's key id: base32 of the first 240 bits of sha256(SPKI DER), in groups of four. */
export function libtrustKeyId(spkiDer: Buffer): string {
  const encoded = base32(createHash('sha256').update(spkiDer).digest().subarray(0, 30));
  return encoded.match(/.{1,4}/g)!.join(':');
}

function base32(bytes: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

export function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/** Decodes a token's claims without checking it, for tests that look inside. */
export function decodeClaims(token: string): Record<string, unknown> {
  const part = token.split('.')[1];
  if (part === undefined) throw new Error('not a JWT');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
}
