/** The request shapes the benchmark sends: OIP v2 JSON and binary over HTTP (undici), and OIP v2 gRPC raw. */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { join } from 'node:path';
import { Pool } from 'undici';

export interface TensorInput {
  readonly name: string;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export type Sender = () => Promise<boolean>;
/** A sender that reports the HTTP status, for the open loop. */
export type StatusSender = () => Promise<number>;

export function v2JsonBody(input: TensorInput): string {
  return JSON.stringify({ inputs: [{ name: input.name, datatype: 'FP32', shape: input.shape, data: Array.from(input.data) }] });
}

export function v2BinaryBody(input: TensorInput): { body: Buffer; headerLength: number } {
  const header = Buffer.from(JSON.stringify({
    inputs: [{ name: input.name, datatype: 'FP32', shape: input.shape, parameters: { binary_data_size: input.data.byteLength } }],
    parameters: { binary_data_output: true },
  }));
  return { body: Buffer.concat([header, Buffer.from(input.data.buffer, input.data.byteOffset, input.data.byteLength)]), headerLength: header.byteLength };
}

/** An OIP v2 infer request for `input` in either form: its body and headers. */
export function v2Request(form: 'JSON' | 'binary', input: TensorInput): { body: string | Buffer; headers: Record<string, string> } {
  if (form === 'JSON') return { body: v2JsonBody(input), headers: { 'content-type': 'application/json' } };
  const { body, headerLength } = v2BinaryBody(input);
  return { body, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) } };
}

export class HttpClient {
  private readonly pool: Pool;
  constructor(origin: string, connections: number) {
    this.pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  }

  post(path: string, request: { body: string | Buffer; headers: Record<string, string> }): StatusSender {
    return async () => {
      const response = await this.pool.request({ method: 'POST', path, ...request });
      await response.body.arrayBuffer();
      return response.statusCode;
    };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export function jsonSender(client: HttpClient, path: string, input: TensorInput): StatusSender {
  return client.post(path, v2Request('JSON', input));
}

export function binarySender(client: HttpClient, path: string, input: TensorInput): StatusSender {
  return client.post(path, v2Request('binary', input));
}

const PROTO = join(__dirname, '..', 'runtime', 'src', 'protocols', 'grpc_predict_v2.proto');

export class GrpcClient {
  private readonly client: grpc.Client & Record<string, Function>;
  constructor(address: string) {
    const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
    const inference = (grpc.loadPackageDefinition(definition) as any).inference;
    this.client = new inference.GRPCInferenceService(address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': 256 * 1024 * 1024, 'grpc.max_send_message_length': 256 * 1024 * 1024,
    });
  }

  sender(model: string, input: TensorInput): StatusSender {
    const request = {
      model_name: model,
      inputs: [{ name: input.name, datatype: 'FP32', shape: input.shape }],
      raw_input_contents: [Buffer.from(input.data.buffer, input.data.byteOffset, input.data.byteLength)],
    };
    return () => new Promise((resolve) => {
      this.client.ModelInfer(request, (error: grpc.ServiceError | null) => {
        resolve(!error ? 200 : error.code === grpc.status.RESOURCE_EXHAUSTED ? 429 : 500);
      });
    });
  }

  close(): void {
    this.client.close();
  }
}

export const ok = (send: StatusSender): Sender => async () => (await send()) === 200;
