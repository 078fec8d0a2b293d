/**
 * onnxruntime-node, loaded so that float16 tensors hold their raw bits in a Uint16Array on every Node version.
 *
 * Where JavaScript has a native Float16Array (Node 24), onnxruntime-common stores float16 data in one, and the
 * native binding of onnxruntime-node 1.30 reads such an array as empty: every FP16 input fails with "not enough
 * space: expected N, got 0". onnxruntime-common picks the array type once, at the first Tensor it constructs; the
 * first one is constructed here with Float16Array out of sight, so the choice is Uint16Array — what the binding
 * reads, and what the datatype table and every encoding of FP16 in this runtime expect. Float16Array itself is put
 * back at once. Import onnxruntime through this module, never directly.
 */
import * as ort from 'onnxruntime-node';

export * from 'onnxruntime-node';

const scope = globalThis as { Float16Array?: unknown };
const nativeFloat16Array = scope.Float16Array;
if (nativeFloat16Array !== undefined) {
  delete scope.Float16Array;
  try {
    new ort.Tensor('float32', new Float32Array(0), [0]);
  } finally {
    Object.defineProperty(scope, 'Float16Array', { value: nativeFloat16Array, writable: true, configurable: true, enumerable: false });
  }
}
