/**
 * An Open Inference Protocol v2 gRPC client made the way a user makes one: @grpc/grpc-js over the published
 * grpc_predict_v2.proto, loaded on its own rather than through the runtime's code.
 */
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { REPO_ROOT } from './paths';

export const PROTO = join(REPO_ROOT, 'runtime', 'src', 'protocols', 'grpc_predict_v2.proto');
export const definition = loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const Service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
export const methods = definition['inference.GRPCInferenceService'] as grpc.ServiceDefinition;

export type GrpcClient = InstanceType<grpc.ServiceClientConstructor>;

export function connect(port: number): GrpcClient {
  return new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
}

/** Calls a unary method, with `metadata` (a traceparent, a token) if given; rejects with the grpc.ServiceError. */
export function rpc(client: GrpcClient, method: string, request: object, metadata: grpc.Metadata = new grpc.Metadata()): Promise<any> {
  return new Promise((resolve, reject) => {
    (client[method] as Function).call(client, request, metadata, (error: grpc.ServiceError | null, response: unknown) => (error ? reject(error) : resolve(response)));
  });
}
