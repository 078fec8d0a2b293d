/**
 * The gRPC door: a @grpc/grpc-js server for OIP v2's GRPCInferenceService on its own port. On SIGTERM it stops
 * listening and sends GOAWAY: calls already started are served, clients open new ones elsewhere. Errors become gRPC
 * statuses with the same messages the REST door sends.
 * With --auth-token-file, every call but the open health checks needs `authorization: Bearer <token>` metadata
 * (UNAUTHENTICATED otherwise); with --tls-cert-file/--tls-key-file the port speaks TLS (renewed certificates
 * taken without a restart), else plaintext.
 */
import { format } from 'node:util';
import {
  Metadata, Server, ServerCredentials, status as GrpcStatus, experimental, loadPackageDefinition, setLogger,
  type GrpcObject, type sendUnaryData, type ServerUnaryCall, type ServiceClientConstructor, type ServiceError,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { InferenceError } from '../errors';
import type { InferenceCore } from '../core/inference';
import { createV2GrpcHandlers, grpcCodeOf, loadProtocolDefinition, type V2GrpcHandlers } from '../protocols/v2-grpc';
import type { Authenticator } from './auth';
import type { ServingCertificate, TlsFiles } from './tls';

/** gRPC's message length options are signed 32-bit. */
const MAX_MESSAGE_LENGTH = 2 ** 31 - 1;

export interface GrpcServerOptions {
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  /** Largest request message accepted; larger ones get RESOURCE_EXHAUSTED from grpc-js before any handler runs. */
  readonly maxBodyBytes: number;
  readonly serverVersion: string;
  readonly log: Logger;
  /** Bearer-token authentication; unset accepts every call. */
  readonly auth?: Authenticator;
  /**
   * Serve TLS with this certificate, and with each renewal of it for new connections (no client certificates);
   * unset serves plaintext.
   */
  readonly tls?: ServingCertificate;
}

export interface GrpcServer {
  /** The bound port (the actual one when 0 was asked for). */
  readonly port: number;
  /** Stops listening, sends GOAWAY, and resolves once every call already started has finished. */
  close(): Promise<void>;
  /** Cancels every open call and closes every connection at once. */
  forceClose(): void;
}

export async function startGrpcServer(core: InferenceCore, options: GrpcServerOptions): Promise<GrpcServer> {
  const log = options.log.child({ component: 'grpc' });
  // grpc-js writes its own diagnostics to stderr as text ("E ..."); keep them in the JSON log instead.
  setLogger({ error: (message?: unknown, ...rest: unknown[]) => log.warn(format(message, ...rest)) });
  const proto = loadPackageDefinition(loadProtocolDefinition());
  const definition = ((proto.inference as GrpcObject).GRPCInferenceService as ServiceClientConstructor).service;
  const server = new Server({
    'grpc.max_receive_message_length': Math.min(options.maxBodyBytes, MAX_MESSAGE_LENGTH),
    'grpc.max_send_message_length': MAX_MESSAGE_LENGTH,
  });

  const handlers = createV2GrpcHandlers(core, options.serverVersion);
  const implementation: UntypedServiceImplementation = {};
  for (const name of Object.keys(handlers) as (keyof V2GrpcHandlers)[]) {
    const handler = handlers[name] as (request: unknown, metadata: Metadata) => Promise<unknown>;
    implementation[name] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      // Before anything else: a refused call is neither tracked nor counted against a model.
      const refusal = options.auth?.grpcRefusal(name, call.metadata);
      if (refusal !== undefined) {
        callback({ code: GrpcStatus.UNAUTHENTICATED, details: refusal });
        return;
      }
      // Once draining, a call that reaches a handler was started before GOAWAY: it is served.
      handler(call.request, call.metadata).then(
        (response) => callback(null, response),
        (error: unknown) => callback(toServiceError(error, name, log)),
      );
    };
  }
  server.addService(definition, implementation);

  const address = options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
  const port = await new Promise<number>((resolve, reject) => {
    const credentials = options.tls ? renewingCredentials(options.tls) : ServerCredentials.createInsecure();
    server.bindAsync(address, credentials, (error, bound) => {
      if (error) reject(new Error(`cannot listen for gRPC on ${address}: ${error.message}`));
      else resolve(bound);
    });
  });

  return {
    port,
    close: () => new Promise<void>((resolve) => {
      server.tryShutdown((error) => {
        if (error) {
          log.warn(`graceful gRPC shutdown failed, forcing it: ${error.message}`);
          server.forceShutdown();
        }
        resolve();
      });
    }),
    forceClose: () => server.forceShutdown(),
  };
}

/**
 * TLS credentials that follow the certificate's renewals. grpc-js calls setSecureContext on its HTTP/2 server with
 * each identity update of a CertificateProvider; this one forwards the pairs ServingCertificate has already checked.
 * (grpc-js's own FileWatcherCertificateProvider re-reads on a timer without checking: a mismatched pair makes the
 * server drop every new connection until the files are fixed, and logs an error at every refresh.)
 */
function renewingCredentials(certificate: ServingCertificate): ServerCredentials {
  const toUpdate = (pair: TlsFiles): experimental.IdentityCertificateUpdate => ({ certificate: pair.cert, privateKey: pair.key });
  const stops = new Map<experimental.IdentityCertificateUpdateListener, () => void>();
  const provider: experimental.CertificateProvider = {
    addIdentityCertificateListener(listener) {
      stops.set(listener, certificate.onRenewal((pair) => listener(toUpdate(pair))));
      // The pair in use, on the next tick: grpc-js registers the server's watcher right after adding this listener,
      // and drops connections until the first update arrives (it arrives before the port is listening).
      process.nextTick(() => {
        if (stops.has(listener)) listener(toUpdate(certificate.current));
      });
    },
    removeIdentityCertificateListener(listener) {
      stops.get(listener)?.();
      stops.delete(listener);
    },
    // No client certificates, so no CA.
    addCaCertificateListener() {},
    removeCaCertificateListener() {},
  };
  // grpc-js 1.14 types the first parameter as the CA provider but uses it as the identity provider (and the second,
  // nullable one, as the CA provider); the provider goes first either way.
  return experimental.createCertificateProviderServerCredentials(provider, null, false);
}

/** An error as a gRPC status: the code its HTTP status maps to and the same message; anything else is INTERNAL. */
function toServiceError(error: unknown, call: string, log: Logger): Partial<ServiceError> {
  const inference = error instanceof InferenceError;
  // The core counts any other error as 500, so the metric's code and the gRPC code agree.
  const code = inference ? grpcCodeOf(error.status) : GrpcStatus.INTERNAL;
  const message = error instanceof Error ? error.message : String(error);
  if (code === GrpcStatus.INTERNAL || code === GrpcStatus.UNKNOWN) log.error({ call, code: GrpcStatus[code] }, message);
  const metadata = new Metadata();
  if (inference && error.retryAfterSeconds !== undefined) metadata.set('retry-after', String(error.retryAfterSeconds));
  return { code, details: message, metadata };
}
