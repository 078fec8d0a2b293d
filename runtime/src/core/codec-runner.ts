/**
 * Where a codec's work runs. Translating and decoding a large body, or encoding a large answer as JSON, takes
 * tens of milliseconds of CPU; on the main thread that time is taken from health probes, /metrics and accepting
 * connections. Above a size where a thread hop costs less than the work, it runs on a codec thread
 * (codec-pool.ts); below it, here, where it is cheapest.
 */
import { decodeRequest } from './decode';
import type { Codec, DecodedRequest, InferResponse } from './request';
import type { Signature, ShapeLimits } from '../tensor/signature';

export interface CodecRunner {
  decode<W, M, E>(codec: Codec<W, M, E>, wire: W, signature: Signature, limits: ShapeLimits): Promise<{ decoded: DecodedRequest; meta: M }>;
  encode<W, M, E>(codec: Codec<W, M, E>, response: InferResponse, meta: M): Promise<E>;
}

/** Translates, checks and decodes a request on this thread. */
export function decodeInline<W, M, E>(codec: Codec<W, M, E>, wire: W, signature: Signature, limits: ShapeLimits): { decoded: DecodedRequest; meta: M } {
  const { request, meta } = codec.translate(wire, signature);
  return { decoded: decodeRequest(request, signature, limits), meta };
}

/** Every codec's work on the calling thread. */
export const INLINE_CODECS: CodecRunner = {
  decode: async (codec, wire, signature, limits) => decodeInline(codec, wire, signature, limits),
  encode: async (codec, response, meta) => codec.encode(response, meta),
};
