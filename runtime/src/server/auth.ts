/**
 * Bearer-token authentication for both doors. The accepted tokens live in a file (`--auth-token-file`, one per line,
 * blank lines and `#` comments ignored), typically a Kubernetes Secret volume. The file is re-read when it changes
 * (WatchedFiles: fs.watch on its directory, where Kubernetes swaps a `..data` symlink, plus a periodic stat, because
 * watch events are not delivered on every volume type), so tokens rotate without a restart, and a token taken out
 * of the file is refused from the next reload on. An unreadable or empty file accepts nothing (fail closed).
 *
 * Tokens are kept and compared as sha256 digests with crypto.timingSafeEqual, so neither a token's length nor its
 * first differing byte shows in the time a refusal takes; a refusal never echoes the token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';
import type { Metadata } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { ServeSettings } from '../config';
import { UsageError } from '../errors';
import { GRPC_ENDPOINTS, policyOf, type EndpointKind, type GrpcCall } from './endpoints';
import { WatchedFiles } from './watched-file';

export type AuthExempt = ServeSettings['authExempt'];

/** The largest token file read; anything bigger is a mistake (a wrong path), not a list of tokens. */
const MAX_TOKEN_FILE_BYTES = 1024 * 1024;

const digest = (token: string) => createHash('sha256').update(token, 'utf8').digest();

/** The tokens in a token file's text: one per line, blank lines and `#` comments skipped. */
export function parseTokens(text: string): string[] {
  return text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line.length > 0 && !line.startsWith('#'));
}

/** The accepted tokens, kept current with the file they come from. */
export class TokenFile {
  private digests: Buffer[] = [];
  /** The accepted digests as one string, to tell a changed list from a rewritten file with the same tokens. */
  private loaded = '';
  private readonly files: WatchedFiles;
  /** The last load's error, so that a file that stays broken logs once rather than every poll. */
  private lastError: string | undefined;

  /**
   * Reads the file once and starts watching it. A path that does not exist is a UsageError (the flag is wrong); a
   * file that exists but holds no usable token fails closed: every request is refused until it does.
   */
  constructor(readonly path: string, private readonly log: Logger) {
    try {
      statSync(path);
    } catch (error) {
      throw new UsageError(`cannot read --auth-token-file '${path}': ${(error as Error).message}`);
    }
    this.files = new WatchedFiles([path], () => this.reload(), 'the token file', log);
    this.reload();
  }

  /** True when `token` is one of the accepted tokens. Constant time in the token and in which one matched. */
  accepts(token: string): boolean {
    const presented = digest(token);
    let match = false;
    for (const accepted of this.digests) match = timingSafeEqual(presented, accepted) || match;
    return match;
  }

  close(): void {
    this.files.close();
  }

  private reload(): void {
    let tokens: string[];
    try {
      const text = readFileSync(this.path, 'utf8');
      if (text.length > MAX_TOKEN_FILE_BYTES) throw new Error(`larger than ${MAX_TOKEN_FILE_BYTES} bytes`);
      tokens = parseTokens(text);
      if (tokens.length === 0) throw new Error('it holds no token');
    } catch (error) {
      this.digests = [];
      this.loaded = '';
      const message = `cannot use --auth-token-file '${this.path}' (${(error as Error).message}): every authenticated request is refused until it is fixed`;
      if (message !== this.lastError) this.log.error(message);
      this.lastError = message;
      return;
    }
    this.digests = [...new Set(tokens)].map(digest);
    const loaded = this.digests.map((d) => d.toString('hex')).sort().join();
    const changed = loaded !== this.loaded;
    this.loaded = loaded;
    if (changed || this.lastError !== undefined) {
      this.log.info({ tokens: this.digests.length, file: basename(this.path) }, 'loaded the accepted bearer tokens');
    }
    this.lastError = undefined;
  }
}

/** Why a request was refused, for the 401 body and the gRPC status; undefined when it is accepted. */
export function checkAuthorization(tokens: TokenFile, header: string | undefined): string | undefined {
  if (header === undefined || header === '') return "missing credentials: send the header 'Authorization: Bearer <token>'";
  // RFC 6750 §2.1: the scheme is case-insensitive; the token is everything after the space(s).
  const match = /^Bearer[ ]+([^\s]+)[ ]*$/i.exec(header);
  if (!match) return "the Authorization header is not a Bearer token: send 'Authorization: Bearer <token>'";
  if (!tokens.accepts(match[1])) return 'the bearer token was not accepted';
  return undefined;
}

/** Authentication as both doors apply it: the token file and the endpoints that stay open (server/endpoints.ts). */
export class Authenticator {
  constructor(readonly tokens: TokenFile, private readonly exempt: AuthExempt) {}

  private isOpen(kind: EndpointKind | undefined): boolean {
    return policyOf(kind).openWith.includes(this.exempt);
  }

  /**
   * A fastify onRequest hook (callback style: no promise per request). It runs after routing and before the body
   * is read, so a refused request costs no body parsing and never reaches a model. The open endpoints are known by
   * their route's config, so no spelling of a URL (query, trailing slash, encoding) opens a route that is not open.
   */
  readonly restHook = (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void => {
    if (this.isOpen(request.routeOptions.config.endpoint)) {
      done();
      return;
    }
    const refusal = checkAuthorization(this.tokens, request.headers.authorization);
    if (refusal === undefined) {
      done();
      return;
    }
    reply.code(401).header('www-authenticate', 'Bearer realm="modelship"').type('application/json').send({ error: refusal });
  };

  /** Why a gRPC call is refused (UNAUTHENTICATED), or undefined when it may go on. */
  grpcRefusal(call: string, metadata: Metadata): string | undefined {
    if (Object.hasOwn(GRPC_ENDPOINTS, call) && this.isOpen(GRPC_ENDPOINTS[call as GrpcCall])) return undefined;
    const values = metadata.get('authorization');
    if (values.length > 1) return "send exactly one 'authorization' metadata entry";
    return checkAuthorization(this.tokens, values.length === 0 ? undefined : String(values[0]));
  }

  close(): void {
    this.tokens.close();
  }
}

/** The authenticator the settings ask for, or undefined when --auth-token-file is not set. */
export function createAuthenticator(settings: Pick<ServeSettings, 'authTokenFile' | 'authExempt'>, log: Logger): Authenticator | undefined {
  if (!settings.authTokenFile) return undefined;
  return new Authenticator(new TokenFile(settings.authTokenFile, log.child({ component: 'auth' })), settings.authExempt);
}
