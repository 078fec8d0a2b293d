/** The messages between the main thread and a codec thread. */
import type { Signature, ShapeLimits } from '../tensor/signature';
import type { CodecName, DecodedRequest, InferResponse } from './request';

export type CodecTask =
  | { readonly op: 'decode'; readonly id: number; readonly codec: CodecName; readonly wire: unknown; readonly signature: Signature; readonly limits: ShapeLimits }
  | { readonly op: 'encode'; readonly id: number; readonly codec: CodecName; readonly response: InferResponse; readonly meta: unknown };

export type CodecReply =
  | { readonly id: number; readonly ok: true; readonly decoded: DecodedRequest; readonly meta: unknown }
  | { readonly id: number; readonly ok: true; readonly encoded: unknown }
  | { readonly id: number; readonly ok: false; readonly status: InferenceStatus; readonly message: string; readonly retryAfterSeconds?: number };

type InferenceStatus = ConstructorParameters<typeof import('../errors').InferenceError>[0];
