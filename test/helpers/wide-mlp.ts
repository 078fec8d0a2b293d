/**
 * The wide MLP (256 → 1024 → 1024 → 10, about 5 MB of float32 weights) that the optimization tests shrink: written
 * at test time by Debian's python3-onnx (test/fixtures/models/make_wide_mlp.py) rather than committed.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { FIXTURE_MODELS } from './paths';

/** Debian's interpreter, which sees python3-onnx (the `python3` on PATH may be another build that does not). */
const DEBIAN_PYTHON = '/usr/bin/python3';

/** Writes the model to `path` (input `x` FP32 [batch, 256], output `y` [batch, 10]) and returns the path. */
export function buildWideMlp(path: string): string {
  execFileSync(DEBIAN_PYTHON, [join(FIXTURE_MODELS, 'make_wide_mlp.py'), path]);
  return path;
}
