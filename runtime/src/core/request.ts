/**
 * The protocol-neutral request and response. Every door (v2 REST, TF Serving REST, v2 gRPC) translates its wire
 * form into an InferRequest and an InferResponse back into its wire form; everything between the two is the
 * core's (core/inference.ts), the same for every protocol.
 */
import type { Datatype, NamedTensor, TensorData } from '../tensor/datatypes';
import type { Signature } from '../tensor/signature';

/**
 * Where an input's elements come from. Read only after the input's name, datatype and shape have passed the checks
 * against the model's signature, so nothing sized by the request is allocated before then.
 */
export interface TensorSource {
  /** Throws a 400 when the data cannot fill `shape` of `datatype` (element count, byte length), allocating nothing. */
  check(datatype: Datatype, shape: readonly number[], where: string): void;
  /** The elements, decoded into a new typed array (or list of strings) of exactly the shape's size. */
  decode(datatype: Datatype, shape: readonly number[], where: string): TensorData;
}

/** The datatype of a wire form that names none (TF Serving): the model's own applies. */
export const MODEL_DATATYPE = Symbol('the model\'s datatype');

export interface RequestedInput {
  readonly name: string;
  /** As the request spells it, unchecked; MODEL_DATATYPE where the wire form has none. */
  readonly datatype: unknown;
  /** As the request declares it, unchecked. */
  readonly shape: unknown;
  readonly data: TensorSource;
}

export interface InferRequest {
  readonly inputs: readonly RequestedInput[];
  /** The outputs asked for; every output when undefined or empty. */
  readonly outputs?: readonly string[];
  /** The request-level `parameters` as the body spelled them (an explanation's settings), unchecked. */
  readonly parameters?: unknown;
}

/** A request whose inputs passed every check and were decoded. */
export interface DecodedRequest {
  readonly inputs: NamedTensor[];
  /** The output names to compute, resolved against the signature. */
  readonly outputs: string[];
  /** As InferRequest's, passed through for the explain path to read. */
  readonly parameters?: unknown;
}

export interface InferResponse {
  readonly model: string;
  readonly version: number;
  readonly outputs: readonly NamedTensor[];
}

/**
 * One wire format: how a door's request becomes an InferRequest, and an InferResponse its answer. `Meta` is what
 * the answer needs from the request (an id, which outputs go binary, TF Serving's row or columnar form); it must
 * survive structured cloning, since large bodies are translated on a codec thread (core/codec-pool.ts).
 */
export interface Codec<Wire, Meta, Encoded> {
  readonly name: CodecName;
  /** Bytes of the wire form that translating it must parse, to decide whether that is worth another thread. */
  size(wire: Wire): number;
  /** The signature is there for formats that need it to read the request (TF Serving's row form). */
  translate(wire: Wire, signature: Signature): { readonly request: InferRequest; readonly meta: Meta };
  encode(response: InferResponse, meta: Meta): Encoded;
  /** Bytes of tensor data the encoding writes out as text: what encoding it costs, beyond copying bytes. */
  textBytes(response: InferResponse, meta: Meta): number;
  /** The wire form with its bytes moved to another thread: the buffers to transfer, and the wire to send along. */
  transferable?(wire: Wire): { readonly wire: Wire; readonly transfer: ArrayBuffer[] };
}

export type CodecName = 'v2-rest' | 'tfserving-rest' | 'v2-grpc';
