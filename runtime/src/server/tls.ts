/**
 * TLS for both doors from mounted PEM files (`--tls-cert-file`, `--tls-key-file`; a kubernetes.io/tls Secret's
 * tls.crt and tls.key). The files are read once at start: a renewed certificate takes effect on the next restart.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { ServeSettings } from '../config';
import { UsageError } from '../errors';

export interface TlsFiles {
  /** PEM certificate chain, the server's certificate first. */
  readonly cert: Buffer;
  /** PEM private key. */
  readonly key: Buffer;
}

/** Reads and checks the certificate and key the settings name, or undefined when TLS is off. */
export function loadTls(settings: Pick<ServeSettings, 'tlsCertFile' | 'tlsKeyFile'>): TlsFiles | undefined {
  const { tlsCertFile, tlsKeyFile } = settings;
  if (!tlsCertFile && !tlsKeyFile) return undefined;
  if (!tlsCertFile || !tlsKeyFile) {
    throw new UsageError(`--tls-cert-file and --tls-key-file go together; only ${tlsCertFile ? '--tls-cert-file' : '--tls-key-file'} was given`);
  }
  const read = (path: string, flag: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new UsageError(`cannot read ${flag} '${path}': ${(error as Error).message}`);
    }
  };
  const files = { cert: read(tlsCertFile, '--tls-cert-file'), key: read(tlsKeyFile, '--tls-key-file') };
  try {
    // Parses both and checks that the key belongs to the certificate, so a mistake ends the start, not each handshake.
    createSecureContext(files);
  } catch (error) {
    throw new UsageError(`cannot use --tls-cert-file '${tlsCertFile}' with --tls-key-file '${tlsKeyFile}': ${(error as Error).message}`);
  }
  return files;
}
