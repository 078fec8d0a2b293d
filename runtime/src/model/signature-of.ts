/** The signature of an onnxruntime session, as the runtime checks requests against it. */
import type * as ort from './onnxruntime';
import { fromOrtType } from '../tensor/datatypes';
import type { Signature, TensorSpec } from '../tensor/signature';

export function signatureOf(session: ort.InferenceSession): Signature {
  return { inputs: session.inputMetadata.map(specOf), outputs: session.outputMetadata.map(specOf) };
}

export function specOf(meta: ort.InferenceSession.ValueMetadata): TensorSpec {
  if (!meta.isTensor) return { name: meta.name, datatype: undefined, ortType: 'non-tensor', shape: undefined };
  return {
    name: meta.name,
    datatype: fromOrtType(meta.type)?.name,
    ortType: meta.type,
    shape: meta.shape.map((dim) => (typeof dim === 'number' && dim >= 0 ? dim : typeof dim === 'string' ? dim : '')),
  };
}

