/**
 * Between a request's tensors and the explainers' view of them: the explained inputs' elements of one row as a
 * vector of numbers, and perturbed vectors back into model inputs, stacked along the batch dimension when the
 * model batches. Inputs that are not explained (strings, half floats) keep the request's values in every row.
 */
import { DATATYPES, elementCount, type Datatype, type NamedTensor, type TensorData, type TypedArray } from '../tensor/datatypes';

/** Whether an input's elements can be perturbed and an output's read as numbers. */
export function isNumeric(datatype: Datatype | undefined): boolean {
  return datatype !== undefined && datatype !== 'BYTES' && datatype !== 'FP16';
}

export interface ExplainedInput {
  readonly tensor: NamedTensor;
  /** Where the input's elements start in the feature vector. */
  readonly offset: number;
}

export class FeatureLayout {
  readonly explained: readonly ExplainedInput[];
  /** Features in all: the explained inputs' elements of one row. */
  readonly size: number;

  /**
   * `batched`: the model has a batch dimension, so each request tensor is one row ([1, ...]) and perturbed rows are
   * stacked along it; otherwise each perturbed row is a whole request.
   */
  constructor(private readonly inputs: readonly NamedTensor[], explainedNames: readonly string[], readonly batched: boolean) {
    let offset = 0;
    this.explained = explainedNames.map((name) => {
      const tensor = inputs.find((input) => input.name === name)!;
      const entry = { tensor, offset };
      offset += elementCount(tensor.shape);
      return entry;
    });
    this.size = offset;
  }

  /** The request's own values of the explained inputs. */
  vector(): Float64Array {
    const vector = new Float64Array(this.size);
    for (const { tensor, offset } of this.explained) {
      const data = tensor.data as TypedArray;
      for (let i = 0; i < data.length; i++) vector[offset + i] = Number(data[i]);
    }
    return vector;
  }

  /** Model inputs for `rows` perturbed vectors: one run of rows.length rows when batched, else exactly one row. */
  tensorsFor(rows: readonly Float64Array[]): NamedTensor[] {
    if (!this.batched && rows.length !== 1) throw new Error('a model without a batch dimension runs one perturbed row at a time');
    return this.inputs.map((input) => {
      const shape = this.batched ? [rows.length, ...input.shape.slice(1)] : [...input.shape];
      const explained = this.explained.find((entry) => entry.tensor === input);
      const perRow = elementCount(input.shape);
      if (!explained) return { ...input, shape, data: repeated(input.data, rows.length) };
      const info = DATATYPES[input.datatype];
      const data = new info.array!(perRow * rows.length) as TypedArray;
      rows.forEach((row, k) => {
        const values = row.subarray(explained.offset, explained.offset + perRow);
        for (let i = 0; i < perRow; i++) data[k * perRow + i] = elementOf(info.kind, values[i]) as never;
      });
      return { ...input, shape, data };
    });
  }
}

/** A number as an element of the input's kind: integers rounded (a median baseline need not be one), booleans 0/1. */
function elementOf(kind: string, value: number): number | bigint {
  if (kind === 'float') return value;
  if (kind === 'bool') return value !== 0 ? 1 : 0;
  const rounded = Math.round(value);
  return kind === 'bigint' ? BigInt(rounded) : rounded;
}

/** `times` copies of a tensor's data, end to end; always a copy, since a run's input buffers move to its worker. */
function repeated(data: TensorData, times: number): TensorData {
  if (Array.isArray(data)) return Array.from({ length: times }, () => data).flat();
  const out = new (data.constructor as new (length: number) => TypedArray)(data.length * times);
  for (let k = 0; k < times; k++) out.set(data as never, k * data.length);
  return out;
}
