/**
 * Tensors as raw little-endian bytes: the OIP v2 binary tensor data extension over REST and
 * `raw_input_contents` / `raw_output_contents` over gRPC share this one encoding. BOOL is one byte per element,
 * FP16 two, BYTES a sequence of (uint32 little-endian length, bytes) per element.
 */
import { badRequest } from '../errors';
import type { TensorSource } from '../core/request';
import { DATATYPES, type Datatype, elementCount, type Tensor, type TypedArray } from './datatypes';

// Fatal: onnxruntime-node holds strings as JS strings, so bytes that are not UTF-8 could not round-trip.
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

/** Bytes per element, or undefined for BYTES (whose elements vary in length). */
export function bytesPerElement(datatype: Datatype): number | undefined {
  return DATATYPES[datatype].array?.BYTES_PER_ELEMENT;
}

/** Elements as raw little-endian bytes (the binary tensor data extension, gRPC's raw_input_contents). */
export function rawSource(bytes: Uint8Array): TensorSource {
  return {
    check: (datatype, shape, where) => checkRawLength(datatype, shape, bytes, where),
    decode: (datatype, shape, where) => tensorFromRaw(datatype, shape, bytes, where).data,
  };
}

/** Throws a 400 unless fixed-width raw data has exactly the shape's bytes; BYTES elements are counted as decoded. */
function checkRawLength(datatype: Datatype, shape: readonly number[], bytes: Uint8Array, where: string): void {
  const width = bytesPerElement(datatype);
  if (width === undefined) return;
  const expected = elementCount(shape) * width;
  if (bytes.byteLength !== expected) {
    throw badRequest(`${where}: shape [${shape.join(', ')}] of ${datatype} needs ${expected} bytes of raw data, received ${bytes.byteLength}`);
  }
}

/**
 * A tensor of `shape` from raw bytes, after the shape has been checked. The bytes are copied into a fresh,
 * aligned buffer that can be handed to a session worker without a further copy.
 */
export function tensorFromRaw(datatype: Datatype, shape: readonly number[], bytes: Uint8Array, where: string): Tensor {
  const count = elementCount(shape);
  const info = DATATYPES[datatype];
  if (!info.array) return { datatype, shape, data: stringsFromRaw(bytes, count, where) };
  checkRawLength(datatype, shape, bytes, where);
  const data = new info.array(count);
  new Uint8Array(data.buffer).set(bytes);
  if (info.kind === 'bool') {
    const flags = data as Uint8Array;
    for (let i = 0; i < count; i++) if (flags[i] > 1) flags[i] = 1;
  }
  return { datatype, shape, data };
}

function stringsFromRaw(bytes: Uint8Array, count: number, where: string): string[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const strings = new Array<string>();
  let offset = 0;
  while (offset < bytes.byteLength) {
    if (strings.length === count) {
      throw badRequest(`${where}: raw BYTES data holds more than the ${count} elements of its shape`);
    }
    if (offset + 4 > bytes.byteLength) throw badRequest(`${where}: raw BYTES data ends inside the length of element ${strings.length}`);
    const length = view.getUint32(offset, true);
    offset += 4;
    if (offset + length > bytes.byteLength) {
      throw badRequest(`${where}: raw BYTES element ${strings.length} declares ${length} bytes, only ${bytes.byteLength - offset} remain`);
    }
    strings.push(decodeStringElement(bytes.subarray(offset, offset + length), `${where}: raw BYTES element ${strings.length}`));
    offset += length;
  }
  if (strings.length !== count) {
    throw badRequest(`${where}: shape needs ${count} BYTES elements, raw data holds ${strings.length}`);
  }
  return strings;
}

/**
 * One string element from bytes: UTF-8 (onnxruntime-node holds strings as JS strings) without NUL characters
 * (onnxruntime holds them as C strings, which a NUL would cut short). Anything else is refused, never altered.
 */
export function decodeStringElement(bytes: Uint8Array, where: string): string {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw badRequest(`${where} is not valid UTF-8, which string tensors need`);
  }
  if (text.includes('\0')) throw badRequest(`${where} contains a NUL character, which onnxruntime string tensors cannot hold`);
  return text;
}

/** A tensor's data as raw bytes: a view without a copy for numeric types, length-prefixed UTF-8 for BYTES. */
export function rawFromTensor(tensor: Tensor): Uint8Array {
  if (!Array.isArray(tensor.data)) {
    const data = tensor.data as TypedArray;
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  const encoded = (tensor.data as string[]).map((s) => utf8Encoder.encode(s));
  const out = new Uint8Array(encoded.reduce((sum, e) => sum + 4 + e.byteLength, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const element of encoded) {
    view.setUint32(offset, element.byteLength, true);
    out.set(element, offset + 4);
    offset += 4 + element.byteLength;
  }
  return out;
}
