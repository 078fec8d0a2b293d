/**
 * TLS for both doors from mounted PEM files (`--tls-cert-file`, `--tls-key-file`; a kubernetes.io/tls Secret's
 * tls.crt and tls.key). The files are watched like the token file (WatchedFiles), so a renewed certificate
 * (cert-manager renews the Secret, the kubelet swaps the volume's `..data` symlink) takes effect for new connections
 * within seconds, without a restart; connections already open keep the certificate they were made with.
 *
 * A renewed pair is checked (both parse, the key belongs to the certificate) before either door uses it. A pair that
 * fails the check — a half-written file, a certificate written before its key — is refused with a warning, and the
 * certificate in use stays in use until the files hold a good pair again: never a broken context, never plaintext.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { ServeSettings } from '../config';
import { UsageError } from '../errors';
import { DEFAULT_POLL_MS, WatchedFiles } from './watched-file';

export interface TlsFiles {
  /** PEM certificate chain, the server's certificate first. */
  readonly cert: Buffer;
  /** PEM private key. */
  readonly key: Buffer;
}

/** Called with each renewed pair, after it has been checked. */
export type RenewalListener = (pair: TlsFiles) => void;

/** The certificate both doors serve, kept current with its files. */
export class ServingCertificate {
  private pair: TlsFiles;
  private readonly listeners = new Set<RenewalListener>();
  private readonly files: WatchedFiles;
  /** The last refusal, so that files that stay broken warn once rather than at every check. */
  private lastRefusal: string | undefined;

  /** Reads and checks the pair (a UsageError if it is unusable: the start ends) and starts watching the files. */
  constructor(readonly certFile: string, readonly keyFile: string, private readonly log: Logger, pollMs = DEFAULT_POLL_MS) {
    // Watching starts before the first read, so that a change during it is not missed.
    this.files = new WatchedFiles([certFile, keyFile], () => this.reload(), 'the TLS certificate and key', log, pollMs);
    try {
      this.pair = readCheckedPair(certFile, keyFile);
    } catch (error) {
      this.files.close();
      throw new UsageError((error as Error).message);
    }
    this.log.info(describe(this.pair), 'serving the TLS certificate');
  }

  /** The pair in use now. */
  get current(): TlsFiles {
    return this.pair;
  }

  /** Calls `listener` with every renewed pair from now on; the returned function stops that. */
  onRenewal(listener: RenewalListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops watching the files. */
  close(): void {
    this.files.close();
    this.listeners.clear();
  }

  private reload(): void {
    let pair: TlsFiles;
    try {
      pair = readCheckedPair(this.certFile, this.keyFile);
    } catch (error) {
      const refusal = `ignoring the changed TLS files: ${(error as Error).message}; new connections keep the certificate `
        + 'in use until the files hold a certificate and its key';
      if (refusal !== this.lastRefusal) this.log.warn({ inUse: describe(this.pair) }, refusal);
      this.lastRefusal = refusal;
      return;
    }
    this.lastRefusal = undefined;
    if (pair.cert.equals(this.pair.cert) && pair.key.equals(this.pair.key)) return;
    this.pair = pair;
    for (const listener of this.listeners) {
      try {
        listener(pair);
      } catch (error) {
        // The pair was checked, so this is not expected; the door that failed keeps its certificate.
        this.log.error(`a door could not take the renewed TLS certificate: ${(error as Error).message}`);
      }
    }
    this.log.info(describe(pair), 'serving a renewed TLS certificate');
  }
}

/** The certificate the settings name, or undefined when TLS is off. */
export function loadTls(settings: Pick<ServeSettings, 'tlsCertFile' | 'tlsKeyFile'>, log: Logger): ServingCertificate | undefined {
  const { tlsCertFile, tlsKeyFile } = settings;
  if (!tlsCertFile && !tlsKeyFile) return undefined;
  if (!tlsCertFile || !tlsKeyFile) {
    throw new UsageError(`--tls-cert-file and --tls-key-file go together; only ${tlsCertFile ? '--tls-cert-file' : '--tls-key-file'} was given`);
  }
  return new ServingCertificate(tlsCertFile, tlsKeyFile, log);
}

/** Reads the pair and has TLS parse both and check that the key belongs to the certificate; errors name the flag. */
function readCheckedPair(certFile: string, keyFile: string): TlsFiles {
  const read = (path: string, flag: string) => {
    try {
      return readFileSync(path);
    } catch (error) {
      throw new Error(`cannot read ${flag} '${path}': ${(error as Error).message}`);
    }
  };
  const pair = { cert: read(certFile, '--tls-cert-file'), key: read(keyFile, '--tls-key-file') };
  try {
    createSecureContext(pair);
  } catch (error) {
    throw new Error(`cannot use --tls-cert-file '${certFile}' with --tls-key-file '${keyFile}': ${(error as Error).message}`);
  }
  return pair;
}

/** What identifies a certificate in the log: never the key. */
function describe(pair: TlsFiles): Record<string, string> {
  try {
    const certificate = new X509Certificate(pair.cert);
    return {
      subject: certificate.subject.replace(/\n/g, ', '),
      serial: certificate.serialNumber,
      notAfter: new Date(certificate.validTo).toISOString(),
      fingerprint256: certificate.fingerprint256,
    };
  } catch {
    return {};
  }
}
