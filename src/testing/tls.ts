/**
 * TLS for the stand-ins of vendors whose official SDK only speaks wss:// (Cartesia, AssemblyAI): a
 * self-signed certificate made by openssl (Debian's package); workers trust it through
 * NODE_EXTRA_CA_CERTS pointed at `caFile`.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TlsFiles {
  cert: string;
  key: string;
  /** A file with the certificate, for NODE_EXTRA_CA_CERTS (workers trust the stand-in with it). */
  caFile: string;
  remove(): void;
}

/** A self-signed certificate for 127.0.0.1 and localhost (openssl), valid for a day. */
export function selfSignedTls(): TlsFiles {
  const dir = mkdtempSync(path.join(tmpdir(), 'pb-tls-'));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: 'ignore' },
  );
  return {
    cert: readFileSync(certFile, 'utf8'),
    key: readFileSync(keyFile, 'utf8'),
    caFile: certFile,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
