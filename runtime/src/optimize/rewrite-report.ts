/** What a graph rewrite (dynamic int8 quantization, float16 storage) did to a model, for `modelship optimize` to print. */
export interface RewriteReport {
  /** Nodes rewritten (MatMul/Gemm quantized, or initializers converted). */
  readonly rewritten: number;
  /** Human-readable notes on what was left alone and why (e.g. "Gemm 'fc3': transA=1, left in float"). */
  readonly skipped: readonly string[];
}
