/** Flags, environment and per-model config files → settings, with errors that name the flag and the fix. */
import assert from 'node:assert/strict';
import { spinningFor } from '../../runtime/src/model/registry';
import { describe, it } from 'node:test';
import { SERVE_SETTINGS } from '@modelship/contract';
import { parseServeSettings, resolveModelConfig } from '../../runtime/src/config';
import { UsageError } from '../../runtime/src/errors';

const usage = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (error: unknown) => error instanceof UsageError && pattern.test(error.message));

describe('serve settings', () => {
  it('takes defaults from the contract table', () => {
    const settings = parseServeSettings(['--model-repository', '/models'], {});
    assert.equal(settings.httpPort, SERVE_SETTINGS.httpPort.default);
    assert.equal(settings.maxBodyBytes, 0, 'derived from the container\'s memory at start-up');
    assert.equal(settings.warmup, true);
  });

  it('reads the environment when a flag is absent, and prefers the flag', () => {
    const env = { MODELSHIP_HTTP_PORT: '9000', MODELSHIP_MODEL: 'a=/a.onnx,b=/b.onnx', MODELSHIP_WARMUP: 'false' };
    const fromEnv = parseServeSettings([], env);
    assert.equal(fromEnv.httpPort, 9000);
    assert.deepEqual(fromEnv.model, ['a=/a.onnx', 'b=/b.onnx']);
    assert.equal(fromEnv.warmup, false);
    assert.equal(parseServeSettings(['--http-port', '9100'], env).httpPort, 9100);
    assert.equal(parseServeSettings(['--model', 'a=/a.onnx', '--no-warmup'], {}).warmup, false);
    // A bare boolean flag says true, over a variable that says false; `=false` still says false.
    assert.equal(parseServeSettings(['--model', 'a=/a.onnx', '--warmup'], env).warmup, true);
    assert.equal(parseServeSettings(['--model', 'a=/a.onnx', '--warmup=false'], {}).warmup, false);
    assert.equal(parseServeSettings(['--warmup', 'false', '--model', 'a=/a.onnx'], {}).warmup, false);
  });

  it('names the flag or variable and the allowed range in errors', () => {
    usage(() => parseServeSettings(['--model-repository', 'm', '--http-port', '70000'], {}), /--http-port must be an integer from 0 to 65535, received '70000'/);
    usage(() => parseServeSettings(['--model-repository', 'm'], { MODELSHIP_MAX_QUEUE_SIZE: 'lots' }), /MODELSHIP_MAX_QUEUE_SIZE/);
    usage(() => parseServeSettings(['--model-repository', 'm', '--execution-provider', 'tpu'], {}), /one of cpu, cuda/);
    usage(() => parseServeSettings(['--bogus'], {}), /bogus/);
    usage(() => parseServeSettings([], {}), /--model-repository DIR or at least one --model/);
    usage(() => parseServeSettings(['--model-repository', 'm', '--model', 'a=b'], {}), /not both/);
  });

  it('takes one model directory with its name, as KServe passes them, and refuses half of the pair or a mix', () => {
    const kserve = parseServeSettings(['--model-name=fraud', '--model-dir=/mnt/models'], {});
    assert.equal(kserve.modelDir, '/mnt/models');
    assert.equal(kserve.modelName, 'fraud');
    assert.equal(parseServeSettings([], { MODELSHIP_MODEL_DIR: '/mnt/models', MODELSHIP_MODEL_NAME: 'fraud' }).modelName, 'fraud');
    usage(() => parseServeSettings(['--model-name', 'fraud'], {}), /--model-name 'fraud' names the model in --model-dir, which is missing: add --model-dir DIR/);
    usage(() => parseServeSettings(['--model-dir', '/mnt/models'], {}), /--model-dir '\/mnt\/models' needs the name to serve it under: add --model-name NAME/);
    usage(() => parseServeSettings(['--model-dir', '/d', '--model-name', 'n', '--model-repository', '/m'], {}), /not both --model-repository and --model-dir/);
    usage(() => parseServeSettings(['--model-dir', '/d', '--model-name', 'n', '--model', 'a=b'], {}), /not both --model and --model-dir/);
  });
});

describe('model config files', () => {
  const defaults = parseServeSettings(['--model-repository', '/models'], {});
  it('overrides the server-wide settings for one model', () => {
    const settings = resolveModelConfig({ max_queue_size: 8, graph_optimization_level: 'basic', warmup: false }, defaults, 'config.json');
    assert.equal(settings.maxQueueSize, 8);
    assert.equal(settings.graphOptimizationLevel, 'basic');
    assert.equal(settings.warmup, false);
    assert.equal(settings.intraOpThreads, defaults.intraOpThreads);
  });
  it('takes intra-op spinning per model: auto (on unless the container has a CPU limit), on or off', () => {
    assert.equal(defaults.intraOpSpinning, 'auto');
    assert.equal(spinningFor('auto', { cpuLimited: false }), 'on');
    assert.equal(spinningFor('auto', { cpuLimited: true }), 'off');
    assert.equal(spinningFor('on', { cpuLimited: true }), 'on');
    assert.equal(resolveModelConfig({ intra_op_spinning: 'off' }, defaults, 'config.json').intraOpSpinning, 'off');
    assert.equal(parseServeSettings(['--model-repository', '/m', '--intra-op-spinning', 'on'], {}).intraOpSpinning, 'on');
    usage(() => resolveModelConfig({ intra_op_spinning: true }, defaults, 'config.json'), /'intra_op_spinning' must be one of auto, on, off/);
  });
  it('refuses unknown keys and bad values, naming them', () => {
    usage(() => resolveModelConfig({ max_queue: 8 }, defaults, 'config.json'), /config.json: unknown setting 'max_queue'; known settings are max_batch_size, max_queue_delay_microseconds, max_queue_size/);
    usage(() => resolveModelConfig({ max_queue_size: 0 }, defaults, 'config.json'), /'max_queue_size' must be an integer from 1/);
    usage(() => resolveModelConfig({ warmup: 'yes' }, defaults, 'config.json'), /'warmup' must be true or false/);
    usage(() => resolveModelConfig([1], defaults, 'config.json'), /must hold an object/);
  });
});
