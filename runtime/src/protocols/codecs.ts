/** Every wire format's codec by name, for the codec threads, which receive the name and the bytes. */
import type { Codec, CodecName } from '../core/request';
import { tfServingCodec } from './tfserving-codec';
import { v2GrpcCodec } from './v2-grpc-codec';
import { v2RestCodec } from './v2-rest-codec';

export const CODECS: Readonly<Record<CodecName, Codec<any, any, any>>> = {
  'v2-rest': v2RestCodec,
  'tfserving-rest': tfServingCodec,
  'v2-grpc': v2GrpcCodec,
};
