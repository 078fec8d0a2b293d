/**
 * `--model-dir DIR --model-name NAME`: which files of one model's directory are served, and the errors that say
 * what to put where when none can be.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UsageError } from '../../runtime/src/errors';
import { modelFromDirectory } from '../../runtime/src/repository';

const usage = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (error: unknown) => error instanceof UsageError && pattern.test(error.message));

describe('modelFromDirectory', () => {
  let root: string;
  const dir = (name: string, files: Record<string, string>) => {
    const path = join(root, name);
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(join(path, file, '..'), { recursive: true });
      writeFileSync(join(path, file), text);
    }
    return path;
  };
  before(() => { root = mkdtempSync(join(tmpdir(), 'modelship-model-dir-')); });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('serves DIR/model.onnx as version 1, with the config file and drift profile beside it', () => {
    const path = dir('direct', { 'model.onnx': 'x', 'config.json': '{}' });
    const { models, skipped } = modelFromDirectory(path, 'fraud');
    assert.deepEqual(models, [{
      name: 'fraud', configPath: join(path, 'config.json'),
      versions: [{ version: 1, path: join(path, 'model.onnx'), profilePath: join(path, 'profile.json') }],
    }]);
    assert.deepEqual(skipped, []);
  });

  it('serves the only .onnx file of a directory under its own name (a storageUri naming one file)', () => {
    const path = dir('single', { 'fraud-v3.onnx': 'x', 'README.md': '' });
    assert.equal(modelFromDirectory(path, 'fraud').models[0].versions[0].path, join(path, 'fraud-v3.onnx'));
    usage(() => modelFromDirectory(dir('two', { 'a.onnx': 'x', 'b.onnx': 'x' }), 'fraud'),
      /holds 2 \.onnx files \(a\.onnx, b\.onnx\) and no model\.onnx: name the one to serve model\.onnx/);
  });

  it('reads version directories as a repository\'s model directory does, skipping what is not a version', () => {
    const path = dir('versions', { '1/model.onnx': 'x', '3/model.onnx': 'x', 'latest/model.onnx': 'x' });
    const { models, skipped } = modelFromDirectory(path, 'fraud');
    assert.deepEqual(models[0].versions.map((v) => [v.version, v.path]), [[1, join(path, '1', 'model.onnx')], [3, join(path, '3', 'model.onnx')]]);
    assert.deepEqual(skipped, [`${join(path, 'latest')}: version directories are positive integers`]);
  });

  it('refuses a missing directory, one without a model, and a name the URLs cannot carry', () => {
    usage(() => modelFromDirectory(join(root, 'absent'), 'fraud'), /--model-dir '.*absent' is not a directory: give the directory that holds model\.onnx or <version>\/model\.onnx/);
    const empty = dir('empty', { 'README.md': '' });
    usage(() => modelFromDirectory(empty, 'fraud'), new RegExp(`--model-dir '${empty}' holds no model\\.onnx: put the model at ${empty}/model\\.onnx or in a version directory such as ${empty}/1/model\\.onnx`));
    usage(() => modelFromDirectory(empty, 'a/b'), /--model-name 'a\/b' is not a valid model name/);
  });
});
