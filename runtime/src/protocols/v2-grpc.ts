/**
 * Open Inference Protocol v2 over gRPC (KServe's and Triton's `inference.GRPCInferenceService`): the six calls as
 * plain async functions over the core (v2-grpc-codec.ts translates ModelInfer messages), which checks and decodes
 * every request as it does the REST door's; errors carry the HTTP status that `grpcCodeOf` translates.
 * The transport (binding, tracking calls for the drain, writing errors) is server/grpc-server.ts.
 * @see https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/#grpc
 */
import { status as GrpcStatus, type Metadata } from '@grpc/grpc-js';
import { loadSync, type Options as ProtoLoaderOptions, type PackageDefinition } from '@grpc/proto-loader';
import { join } from 'node:path';
import { SERVER_NAME, type InferenceCore } from '../core/inference';
import { v2GrpcCodec, type ModelInferRequest, type ModelInferResponse } from './v2-grpc-codec';
import { v2ModelMetadata } from './v2-rest';

// The service definition is read at start-up from beside this module: the package ships the .proto in src/.
export const PROTO_PATH = join(__dirname, 'grpc_predict_v2.proto');

/** 64-bit integers as decimal strings so that they stay exact; unset fields as their defaults (empty lists, ''). */
export const PROTO_LOADER_OPTIONS: ProtoLoaderOptions = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

export const SERVICE_NAME = 'inference.GRPCInferenceService';

export function loadProtocolDefinition(): PackageDefinition {
  try {
    return loadSync(PROTO_PATH, PROTO_LOADER_OPTIONS);
  } catch (error) {
    throw new Error(`cannot load the gRPC protocol definition ${PROTO_PATH}: ${(error as Error).message.split('\n')[0]}`);
  }
}

interface ModelRef { readonly name: string; readonly version: string }

// ---- Status mapping

/** The gRPC code for an HTTP status, as the runtime contract pairs them. */
export function grpcCodeOf(status: number): GrpcStatus {
  switch (status) {
    case 400: return GrpcStatus.INVALID_ARGUMENT;
    case 404: return GrpcStatus.NOT_FOUND;
    case 413:
    case 429: return GrpcStatus.RESOURCE_EXHAUSTED;
    case 503: return GrpcStatus.UNAVAILABLE;
    case 500: return GrpcStatus.INTERNAL;
    default: return GrpcStatus.UNKNOWN;
  }
}

// ---- The calls

export interface V2GrpcHandlers {
  ServerLive(request: object): Promise<{ live: boolean }>;
  ServerReady(request: object): Promise<{ ready: boolean }>;
  ModelReady(request: ModelRef): Promise<{ ready: boolean }>;
  ServerMetadata(request: object): Promise<{ name: string; version: string; extensions: string[] }>;
  ModelMetadata(request: ModelRef): Promise<object>;
  /** `metadata` carries a caller's W3C trace context (`traceparent`, `tracestate`). */
  ModelInfer(request: ModelInferRequest, metadata?: Metadata): Promise<ModelInferResponse>;
}

export function createV2GrpcHandlers(core: InferenceCore, serverVersion: string): V2GrpcHandlers {
  return {
    async ServerLive() {
      return { live: true };
    },
    async ServerReady() {
      return { ready: core.isReady };
    },
    async ModelReady({ name, version }) {
      return { ready: core.modelReady(name, version || undefined) };
    },
    async ServerMetadata() {
      // The binary tensor data extension is a REST one; gRPC carries raw contents natively.
      return { name: SERVER_NAME, version: serverVersion, extensions: [] };
    },
    async ModelMetadata({ name, version }) {
      const { state: _state, reason: _reason, ...metadata } = v2ModelMetadata(core.modelMetadata(name, version || undefined));
      return metadata;
    },
    async ModelInfer(request, metadata) {
      // The metadata is read only when tracing is on: a map of it per call would cost every call.
      const carrier = core.tracing && metadata ? metadata.getMap() : undefined;
      return core.infer(v2GrpcCodec, request, { protocol: 'grpc', model: request.model_name, version: request.model_version || undefined, carrier });
    },
  };
}
