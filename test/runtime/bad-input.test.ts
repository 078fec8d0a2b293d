/**
 * Bad input, table-driven, against one real runtime serving several models: every malformed, mistyped, misshapen,
 * oversized or hostile request gets the contract's status and a `{"error": "..."}` body naming the input, the
 * expected and the received; absurd declared shapes are refused before anything is allocated; and afterwards the
 * server is still ready, still answers correctly, has counted the 400s, and exits 0 on SIGTERM.
 */
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Agent, fetch as undiciFetch } from 'undici';
import * as ort from '../../runtime/src/model/onnxruntime';
import { METRIC } from '@modelship/contract';
import { HOSTILE_INPUT_MODEL_ARGS, MODELS } from '../helpers/paths';
import { runReference } from '../helpers/reference';
import { startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

const MAX_BODY_BYTES = 65_536;
const MAX_TENSOR_ELEMENTS = 1_000_000;
/** No request may take longer than this; a hang fails the case instead of the whole run. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Nesting far past MAX_RANK (32), and past the depth where recursive JSON.stringify / Array#join overflow the stack. */
const DEEP = 10_000;
const deep = (levels: number, leaf = '1') => `${'['.repeat(levels)}${leaf}${']'.repeat(levels)}`;

type Json = Record<string, unknown>;

interface Case {
  readonly name: string;
  readonly method?: 'GET' | 'POST';
  readonly path: string;
  /** A string is sent verbatim, anything else as JSON; undefined sends no body. */
  readonly body?: unknown;
  /** @default 'application/json' for POST; null sends no content-type header. */
  readonly contentType?: string | null;
  readonly status: number;
  /** What the error message must contain (substrings, or patterns): the input's name, the expected and the received. */
  readonly says: readonly (string | RegExp)[];
}

// Valid requests, one per model; the cases below each corrupt one thing.
const x = (over: Json = {}): Json => ({ name: 'x', datatype: 'FP32', shape: [2, 1], data: [1, 2], ...over });
const TYPED = {
  ids: { name: 'ids', datatype: 'INT64', shape: [2, 3], data: [1, 2, 3, 4, 5, 6] },
  mask: { name: 'mask', datatype: 'BOOL', shape: [2, 3], data: [true, false, true, false, true, false] },
  text: { name: 'text', datatype: 'BYTES', shape: [2], data: ['a', 'b'] },
} as const;
const typed = (over: Partial<Record<keyof typeof TYPED, Json>> = {}) => ({
  inputs: (Object.keys(TYPED) as (keyof typeof TYPED)[]).map((name) => ({ ...TYPED[name], ...over[name] })),
});
const ALL_TYPES: Record<string, [string, unknown]> = {
  bool: ['BOOL', true], uint8: ['UINT8', 1], uint16: ['UINT16', 1], uint32: ['UINT32', 1], uint64: ['UINT64', 1],
  int8: ['INT8', 1], int16: ['INT16', 1], int32: ['INT32', 1], int64: ['INT64', 1],
  fp16: ['FP16', 1], fp32: ['FP32', 1], fp64: ['FP64', 1], bytes: ['BYTES', 'a'],
};
/** The identity model's request with every in_<type> of shape [1]; `over` replaces fields of one input. */
const all = (type?: string, over: Json = {}) => ({
  inputs: Object.entries(ALL_TYPES).map(([t, [datatype, value]]) =>
    ({ name: `in_${t}`, datatype, shape: [1], data: [value], ...(t === type ? over : {}) })),
});
/** The identity model's request with every input declaring `shape` (and one element of data). */
const allShaped = (shape: number[]) => ({ inputs: all().inputs.map((input) => ({ ...input, shape })) });
const fails = (shape: [number, number]) => ({
  inputs: [
    { name: 'x', datatype: 'FP32', shape: [6], data: [1, 2, 3, 4, 5, 6] },
    { name: 'shape', datatype: 'INT64', shape: [2], data: shape },
  ],
});
const staticX = (shape: number[]) => ({
  inputs: [{ name: 'x', datatype: 'FP32', shape, data: new Array(shape.reduce((a, b) => a * b, 1)).fill(1) }],
});

const V2 = (model: string) => `/v2/models/${model}/infer`;
const TF = (model: string, method = 'predict') => `/v1/models/${model}:${method}`;
const LIN = V2('lin');
const SERVED = ["'lin'", "'typed'", "'static'", "'all'", "'fails'"];
const tooBig = JSON.stringify({ inputs: [x({ shape: [20_000, 1], data: new Array(20_000).fill(0.5) })] });

const CASES: readonly Case[] = [
  // The body is not a JSON object.
  { name: 'truncated JSON', path: LIN, body: '{"inputs": [{"name": "x", "da', status: 400, says: ['not valid JSON'] },
  { name: 'trailing garbage after the JSON', path: LIN, body: `${JSON.stringify({ inputs: [x()] })} garbage`, status: 400, says: ['not valid JSON'] },
  { name: 'a number as the body', path: LIN, body: '42', status: 400, says: ['JSON object', '42'] },
  { name: 'a string as the body', path: LIN, body: '"hello"', status: 400, says: ['JSON object', '"hello"'] },
  { name: 'an array as the body', path: LIN, body: '[{"name":"x"}]', status: 400, says: ['JSON object', '[{"name":"x"}]'] },
  { name: 'null as the body', path: LIN, body: 'null', status: 400, says: ['JSON object', 'null'] },
  { name: 'empty body', path: LIN, body: '', status: 400, says: ['empty'] },
  { name: 'whitespace-only body', path: LIN, body: ' \n\t ', status: 400, says: ['empty'] },
  { name: 'no body and no content type', path: LIN, contentType: null, status: 400, says: ['empty'] },

  // 'inputs' and each input's envelope.
  { name: 'inputs missing', path: LIN, body: {}, status: 400, says: ["'inputs'", 'array', 'undefined'] },
  { name: 'inputs not an array', path: LIN, body: { inputs: { x: [1] } }, status: 400, says: ["'inputs'", '{"x":[1]}'] },
  // Refused either as an empty list or, where an empty list is allowed (models without inputs), as missing 'x'.
  { name: 'inputs empty', path: LIN, body: { inputs: [] }, status: 400, says: [/'inputs' must be a non-empty array.*\[\]|missing input 'x' \(FP32 \[batch, 1\]\)/] },
  { name: 'an input that is not an object', path: LIN, body: { inputs: [5] }, status: 400, says: ['inputs[0]', "'name'", '5'] },
  { name: 'input without a name', path: LIN, body: { inputs: [{ datatype: 'FP32', shape: [1, 1], data: [1] }] }, status: 400, says: ['inputs[0]', "'name'", '"datatype":"FP32"'] },
  { name: 'input name not a string', path: LIN, body: { inputs: [x({ name: 5 })] }, status: 400, says: ['inputs[0]', "'name'", '"name":5'] },
  { name: 'unknown input name', path: LIN, body: { inputs: [x({ name: 'X' })] }, status: 400, says: ["unknown input 'X'", "'x'"] },
  { name: 'duplicate input', path: LIN, body: { inputs: [x(), x()] }, status: 400, says: ["input 'x'", 'more than once'] },
  { name: 'missing inputs (typed given only ids)', path: V2('typed'), body: { inputs: [TYPED.ids] }, status: 400, says: ['missing inputs', "'mask'", 'BOOL', "'text'", 'BYTES', '[batch, seq]'] },

  // Datatypes.
  { name: 'wrong datatype (FP64 for FP32)', path: LIN, body: { inputs: [x({ datatype: 'FP64' })] }, status: 400, says: ["input 'x'", 'expected datatype FP32', 'received FP64'] },
  { name: 'invalid datatype string', path: LIN, body: { inputs: [x({ datatype: 'FLOAT32' })] }, status: 400, says: ["input 'x'", "'datatype'", 'FP32', '"FLOAT32"'] },
  { name: 'lower-case datatype', path: LIN, body: { inputs: [x({ datatype: 'fp32' })] }, status: 400, says: ["input 'x'", "'datatype'", '"fp32"'] },
  { name: 'datatype missing', path: LIN, body: { inputs: [x({ datatype: undefined })] }, status: 400, says: ["input 'x'", "'datatype'"] },
  { name: 'wrong datatype on a typed input (INT32 for INT64)', path: V2('typed'), body: typed({ ids: { datatype: 'INT32' } }), status: 400, says: ["input 'ids'", 'INT64', 'INT32'] },

  // Declared shapes.
  { name: 'shape not an array', path: LIN, body: { inputs: [x({ shape: '2,1' })] }, status: 400, says: ["input 'x'", "'shape'", 'non-negative integers', '"2,1"'] },
  { name: 'shape missing', path: LIN, body: { inputs: [x({ shape: undefined })] }, status: 400, says: ["input 'x'", "'shape'"] },
  { name: 'negative dim', path: LIN, body: { inputs: [x({ shape: [-1, 1] })] }, status: 400, says: ["input 'x'", 'non-negative', '[-1,1]'] },
  { name: 'fractional dim', path: LIN, body: { inputs: [x({ shape: [1.5, 1] })] }, status: 400, says: ["input 'x'", 'integers', '[1.5,1]'] },
  { name: 'dim given as a string', path: LIN, body: { inputs: [x({ shape: ['2', 1] })] }, status: 400, says: ["input 'x'", 'integers', '["2",1]'] },
  { name: 'dim beyond 2^53', path: LIN, body: { inputs: [x({ shape: [1e300, 1] })] }, status: 400, says: ["input 'x'", 'integers', '1e+300'] },
  { name: 'rank over the limit of 32', path: LIN, body: { inputs: [x({ shape: new Array(33).fill(1) })] }, status: 400, says: ["input 'x'", 'rank 33', '32'] },
  { name: 'wrong rank (1 for 2)', path: LIN, body: { inputs: [x({ shape: [2] })] }, status: 400, says: ["input 'x'", 'expected rank 2', '[batch, 1]', 'received rank 1', '[2]'] },
  { name: 'wrong rank (3 for 2)', path: LIN, body: { inputs: [x({ shape: [2, 1, 1] })] }, status: 400, says: ["input 'x'", 'expected rank 2', 'received rank 3', '[2, 1, 1]'] },
  { name: 'wrong fixed dim of a dynamic-batch input', path: LIN, body: { inputs: [x({ shape: [1, 2] })] }, status: 400, says: ["input 'x'", '[batch, 1]', '[1, 2]', 'dim 1 must be 1'] },
  { name: 'wrong static dim (static model given [2,3])', path: V2('static'), body: staticX([2, 3]), status: 400, says: ["input 'x'", '[4, 3]', '[2, 3]', 'dim 0 must be 4'] },
  { name: 'zero-size shape with an absurd dim ([0, 2^40])', path: V2('typed'), body: typed({ ids: { shape: [0, 2 ** 40], data: [] }, mask: { shape: [0, 2 ** 40], data: [] }, text: { shape: [0], data: [] } }), status: 400, says: ["input 'ids'", '1099511627776'] },

  // Data against the declared shape.
  { name: 'more data than the shape', path: LIN, body: { inputs: [x({ data: [1, 2, 3] })] }, status: 400, says: ["input 'x'", '[2, 1]', 'needs 2', 'has 3'] },
  { name: 'less data than the shape', path: LIN, body: { inputs: [x({ shape: [3, 1] })] }, status: 400, says: ["input 'x'", '[3, 1]', 'needs 3', 'has 2'] },
  { name: 'data missing', path: LIN, body: { inputs: [x({ data: undefined })] }, status: 400, says: ["input 'x'", "'data'", 'array'] },
  { name: 'data not an array', path: LIN, body: { inputs: [x({ data: '1,2' })] }, status: 400, says: ["input 'x'", "'data'", '"1,2"'] },
  { name: 'nested data with too many rows', path: LIN, body: { inputs: [x({ data: [[1], [2], [3]] })] }, status: 400, says: ["input 'x'", 'needs 2', 'has 3'] },
  { name: 'nested data with too few rows', path: LIN, body: { inputs: [x({ data: [[1]] })] }, status: 400, says: ["input 'x'", 'needs 2', 'has 1'] },
  { name: 'nested data with a ragged row', path: LIN, body: { inputs: [x({ shape: [3, 1], data: [[1], [2, 3, 4], [5]] })] }, status: 400, says: ["input 'x'", 'needs 3', 'has 5'] },
  // Mixed nesting: a scalar among rows, or rows after a scalar, must not hide elements from the count.
  { name: 'mixed nesting hiding extra elements after a scalar', path: LIN, body: { inputs: [x({ data: [[1], 2, 999] })] }, status: 400, says: ["input 'x'"] },
  { name: 'mixed nesting: a scalar then a row', path: LIN, body: { inputs: [x({ data: [1, [2, 3]] })] }, status: 400, says: ["input 'x'"] },
  { name: 'mixed nesting in a BYTES input', path: V2('typed'), body: typed({ text: { data: [['a'], 'b', 'c', 'd'] } }), status: 400, says: ["input 'text'"] },

  // Elements.
  { name: 'non-numeric element ("abc" in FP32)', path: LIN, body: { inputs: [x({ data: [1, 'abc'] })] }, status: 400, says: ["input 'x'", 'element 1', '"abc"', 'a number', 'FP32'] },
  { name: 'null element in FP32', path: LIN, body: { inputs: [x({ data: [null, 1] })] }, status: 400, says: ["input 'x'", 'element 0', 'null', 'FP32'] },
  { name: 'boolean element in FP32', path: LIN, body: { inputs: [x({ data: [1, true] })] }, status: 400, says: ["input 'x'", 'true', 'FP32'] },
  { name: 'non-numeric element in FP16', path: V2('all'), body: all('fp16', { data: ['abc'] }), status: 400, says: ["input 'in_fp16'", '"abc"', 'FP16'] },
  { name: 'UINT8 out of range (300)', path: V2('all'), body: all('uint8', { data: [300] }), status: 400, says: ["input 'in_uint8'", '300', '0 to 255', 'UINT8'] },
  { name: 'UINT8 negative (-1)', path: V2('all'), body: all('uint8', { data: [-1] }), status: 400, says: ["input 'in_uint8'", '-1', '0 to 255'] },
  { name: 'INT8 out of range (128)', path: V2('all'), body: all('int8', { data: [128] }), status: 400, says: ["input 'in_int8'", '128', '-128 to 127'] },
  { name: 'INT32 given 1.5', path: V2('all'), body: all('int32', { data: [1.5] }), status: 400, says: ["input 'in_int32'", '1.5', 'integer', 'INT32'] },
  { name: 'INT32 given a digit string', path: V2('all'), body: all('int32', { data: ['5'] }), status: 400, says: ["input 'in_int32'", '"5"', 'INT32'] },
  { name: 'UINT64 given 2^64 as digits', path: V2('all'), body: all('uint64', { data: ['18446744073709551616'] }), status: 400, says: ["input 'in_uint64'", '18446744073709551616', '18446744073709551615', 'UINT64'] },
  { name: 'UINT64 given -1', path: V2('all'), body: all('uint64', { data: [-1] }), status: 400, says: ["input 'in_uint64'", '-1', 'UINT64'] },
  { name: 'INT64 given 2^63 as digits', path: V2('all'), body: all('int64', { data: ['9223372036854775808'] }), status: 400, says: ["input 'in_int64'", '9223372036854775808', '9223372036854775807', 'INT64'] },
  { name: 'INT64 given a non-integer string', path: V2('all'), body: all('int64', { data: ['12abc'] }), status: 400, says: ["input 'in_int64'", '"12abc"', 'INT64'] },
  { name: 'BOOL given 1', path: V2('all'), body: all('bool', { data: [1] }), status: 400, says: ["input 'in_bool'", 'element 0 is 1', 'true or false', 'BOOL'] },
  { name: 'BOOL given "true"', path: V2('typed'), body: typed({ mask: { data: ['true', false, true, false, true, false] } }), status: 400, says: ["input 'mask'", '"true"', 'true or false'] },
  { name: 'BYTES given a number', path: V2('typed'), body: typed({ text: { data: ['a', 5] } }), status: 400, says: ["input 'text'", 'element 1 is 5', 'a string', 'BYTES'] },
  { name: 'BYTES given an object', path: V2('all'), body: all('bytes', { data: [{ b64: 'AA==' }] }), status: 400, says: ["input 'in_bytes'", '{"b64":"AA=="}', 'a string'] },

  // The rest of the request.
  { name: 'unknown requested output', path: LIN, body: { inputs: [x()], outputs: [{ name: 'nope' }] }, status: 400, says: ["unknown output 'nope'", "'y_pred'"] },
  { name: 'outputs not an array', path: LIN, body: { inputs: [x()], outputs: 5 }, status: 400, says: ["'outputs'", '5'] },
  { name: 'an output without a name', path: LIN, body: { inputs: [x()], outputs: [{}] }, status: 400, says: ['outputs[0]', "'name'", '{}'] },
  { name: 'id not a string (number)', path: LIN, body: { id: 5, inputs: [x()] }, status: 400, says: ["'id'", 'string', '5'] },
  { name: 'id not a string (object)', path: LIN, body: { id: { a: 1 }, inputs: [x()] }, status: 400, says: ["'id'", '{"a":1}'] },
  { name: 'binary_data_size on a JSON body without binary data', path: LIN, body: { inputs: [x({ parameters: { binary_data_size: 8 } })] }, status: 400, says: ["input 'x'", 'binary'] },

  // Nesting far deeper than any rank: refused with 400, never a stack overflow.
  { name: `data nested ${DEEP} levels`, path: LIN, body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[2,1],"data":${deep(DEEP)}}]}`, status: 400, says: ["input 'x'", '32'] },
  { name: `data nested ${DEEP} levels after a scalar`, path: LIN, body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[2,1],"data":[1,${deep(DEEP)}]}]}`, status: 400, says: ["input 'x'"] },
  { name: `data nested ${DEEP} levels inside a row`, path: LIN, body: `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,1],"data":[${deep(DEEP)}]}]}`, status: 400, says: ["input 'x'", '32'] },
  { name: `body nested ${DEEP} levels`, path: LIN, body: deep(DEEP), status: 400, says: ['JSON object'] },
  { name: `inputs nested ${DEEP} levels`, path: LIN, body: `{"inputs":${deep(DEEP)}}`, status: 400, says: ['inputs'] },
  { name: `an input nested ${DEEP} levels`, path: LIN, body: `{"inputs":[${deep(DEEP)}]}`, status: 400, says: ['inputs[0]'] },
  { name: `id nested ${DEEP} levels`, path: LIN, body: `{"id":${deep(DEEP)},"inputs":[${JSON.stringify(x())}]}`, status: 400, says: ["'id'"] },
  { name: `datatype nested ${DEEP} levels`, path: LIN, body: `{"inputs":[{"name":"x","datatype":${deep(DEEP)},"shape":[1,1],"data":[1]}]}`, status: 400, says: ["input 'x'", "'datatype'"] },
  { name: `shape nested ${DEEP} levels`, path: LIN, body: `{"inputs":[{"name":"x","datatype":"FP32","shape":${deep(DEEP)},"data":[1]}]}`, status: 400, says: ["input 'x'", "'shape'"] },
  { name: `an output nested ${DEEP} levels`, path: LIN, body: `{"inputs":[${JSON.stringify(x())}],"outputs":[${deep(DEEP)}]}`, status: 400, says: ['outputs[0]'] },
  { name: `TF instances nested ${DEEP} levels`, path: TF('lin'), body: `{"instances":${deep(DEEP)}}`, status: 400, says: ["input 'x'", '32'] },
  { name: `TF columnar inputs nested ${DEEP} levels`, path: TF('lin'), body: `{"inputs":${deep(DEEP)}}`, status: 400, says: ["input 'x'", '32'] },
  { name: `TF instance nested ${DEEP} levels (multi-input model)`, path: TF('typed'), body: `{"instances":[${deep(DEEP)}]}`, status: 400, says: ['instances[0]'] },

  // Body size and content type.
  { name: `body over --max-body-bytes (${MAX_BODY_BYTES})`, path: LIN, body: tooBig, status: 413, says: [String(MAX_BODY_BYTES), '--max-body-bytes'] },
  { name: 'TF body over --max-body-bytes', path: TF('lin'), body: `{"instances":[${new Array(20_000).fill('0.5').join(',')}]}`, status: 413, says: [String(MAX_BODY_BYTES)] },
  { name: 'content type text/xml', path: LIN, body: '<inputs/>', contentType: 'text/xml', status: 415, says: ["'text/xml'", 'application/json'] },
  { name: 'content type multipart/form-data', path: LIN, body: '--b\r\n\r\n--b--\r\n', contentType: 'multipart/form-data; boundary=b', status: 415, says: ['multipart/form-data', 'application/json'] },
  { name: 'content type application/octet-stream without the binary header', path: LIN, body: 'AAAA', contentType: 'application/octet-stream', status: 400, says: ['application/octet-stream', 'Inference-Header-Content-Length'] },
  { name: 'TF content type text/xml', path: TF('lin'), body: '<instances/>', contentType: 'text/xml', status: 415, says: ["'text/xml'"] },

  // Models, versions and routes.
  { name: 'unknown model (infer)', path: V2('nope'), body: { inputs: [x()] }, status: 404, says: ["unknown model 'nope'", ...SERVED] },
  { name: 'unknown model (metadata)', method: 'GET', path: '/v2/models/nope', status: 404, says: ["unknown model 'nope'", ...SERVED] },
  { name: 'unknown model (ready)', method: 'GET', path: '/v2/models/nope/ready', status: 404, says: ["unknown model 'nope'"] },
  { name: 'unknown version', path: '/v2/models/lin/versions/9/infer', body: { inputs: [x()] }, status: 404, says: ["'lin'", "version '9'", 'available versions: 1'] },
  { name: 'non-numeric version', path: '/v2/models/lin/versions/abc/infer', body: { inputs: [x()] }, status: 404, says: ["'lin'", "version 'abc'", '1'] },
  { name: 'fractional version', path: '/v2/models/lin/versions/1.0/infer', body: { inputs: [x()] }, status: 404, says: ["version '1.0'"] },
  { name: 'unknown version (metadata)', method: 'GET', path: '/v2/models/lin/versions/9', status: 404, says: ["version '9'"] },
  { name: 'unknown route (GET)', method: 'GET', path: '/v3/nope', status: 404, says: ['no route', 'GET /v3/nope'] },
  { name: 'unknown route (POST)', path: '/v2/models/lin/predict', body: { inputs: [x()] }, status: 404, says: ['no route', 'POST /v2/models/lin/predict'] },
  { name: 'infer with GET', method: 'GET', path: LIN, status: 404, says: ['no route', 'GET'] },

  // TF Serving.
  { name: 'TF neither instances nor inputs', path: TF('lin'), body: {}, status: 400, says: ["'instances'", "'inputs'"] },
  { name: 'TF both instances and inputs', path: TF('lin'), body: { instances: [[1]], inputs: [[1]] }, status: 400, says: ["'instances'", "'inputs'", 'not both'] },
  { name: 'TF instances not a list', path: TF('lin'), body: { instances: 5 }, status: 400, says: ["'instances'", 'non-empty list', '5'] },
  { name: 'TF instances empty', path: TF('lin'), body: { instances: [] }, status: 400, says: ["'instances'", '[]'] },
  { name: 'TF instances null', path: TF('lin'), body: { instances: null }, status: 400, says: ["'instances'", 'null'] },
  { name: 'TF ragged instances', path: TF('lin'), body: { instances: [[1], [2, 3]] }, status: 400, says: ["input 'x'", 'ragged'] },
  { name: 'TF ragged columnar inputs', path: TF('lin'), body: { inputs: [[1], [2], 3] }, status: 400, says: ["input 'x'", 'ragged'] },
  { name: 'TF non-numeric instance', path: TF('lin'), body: { instances: [1, 'abc'] }, status: 400, says: ["input 'x'", '"abc"', 'FP32'] },
  { name: 'TF instances of the wrong rank', path: TF('lin'), body: { instances: [[[1]]] }, status: 400, says: ["input 'x'", 'rank', '[batch, 1]'] },
  { name: 'TF instances of the wrong static shape', path: TF('static'), body: { instances: [[1, 2, 3]] }, status: 400, says: ["input 'x'", '[4, 3]', '[1, 3]'] },
  { name: 'TF instance not an object (multi-input model)', path: TF('typed'), body: { instances: [5] }, status: 400, says: ['instances[0]', "'ids'", "'mask'", "'text'", '5'] },
  { name: 'TF instance lacking an input', path: TF('typed'), body: { instances: [{ ids: [1], mask: [true], text: 'a' }, { ids: [2], text: 'b' }] }, status: 400, says: ['instances[1]', "'mask'"] },
  { name: 'TF instance with an extra input', path: TF('typed'), body: { instances: [{ ids: [1], mask: [true], text: 'a' }, { ids: [2], mask: [true], text: 'b', foo: 1 }] }, status: 400, says: ['instances[1]', "'foo'"] },
  { name: 'TF columnar unknown input', path: TF('typed'), body: { inputs: { ids: [[1]], mask: [[true]], text: ['a'], foo: [1] } }, status: 400, says: ["unknown input 'foo'"] },
  { name: 'TF columnar missing input', path: TF('typed'), body: { inputs: { ids: [[1]] } }, status: 400, says: ['missing inputs', "'mask'", "'text'"] },
  { name: 'TF columnar not keyed for a multi-input model', path: TF('typed'), body: { inputs: [[1]] }, status: 400, says: ["'inputs'", "'ids'", "'mask'", "'text'"] },
  { name: 'TF BOOL given 1', path: TF('typed'), body: { inputs: { ids: [[1]], mask: [[1]], text: ['a'] } }, status: 400, says: ["input 'mask'", 'true or false'] },
  { name: 'TF malformed JSON', path: TF('lin'), body: '{"instances": [1,', status: 400, says: ['not valid JSON'] },
  { name: 'TF body not an object', path: TF('lin'), body: '[1, 2]', status: 400, says: ['JSON object', "'instances'", '[1,2]'] },
  { name: 'TF empty body', path: TF('lin'), body: '', status: 400, says: ['empty'] },
  { name: 'TF :classify', path: TF('lin', 'classify'), body: { instances: [1] }, status: 400, says: ["':classify'", "':predict'"] },
  { name: 'TF :regress', path: TF('lin', 'regress'), body: { instances: [1] }, status: 400, says: ["':regress'", "':predict'"] },
  { name: 'TF unknown model', path: TF('nope'), body: { instances: [1] }, status: 404, says: ["unknown model 'nope'", ...SERVED] },
  { name: 'TF unknown version', path: '/v1/models/lin/versions/9:predict', body: { instances: [1] }, status: 404, says: ["'lin'", "version '9'"] },
  { name: 'TF unknown model status', method: 'GET', path: '/v1/models/nope', status: 404, says: ["unknown model 'nope'"] },
  { name: 'TF columnar input under a wrong name (one-input model)', path: TF('lin'), body: { inputs: { input: [[1]] } }, status: 400, says: ["unknown input 'input'", "'x'"] },
  { name: 'TF row input under a wrong name (one-input model)', path: TF('lin'), body: { instances: [{ input: [1] }] }, status: 400, says: ["unknown input 'input'", "'x'"] },
  { name: 'TF :predict with GET', method: 'GET', path: TF('lin'), status: 405, says: ["':predict' takes POST", 'GET', '/v1/models/lin:predict'] },
  { name: 'TF versioned :predict with GET', method: 'GET', path: '/v1/models/lin/versions/1:predict', status: 405, says: ["':predict' takes POST"] },
  { name: 'TF path that is no route', path: '/v1/models/lin/extra:predict', body: { instances: [1] }, status: 404, says: ['no route', '/v1/models/lin/extra:predict'] },

  // Execution.
  { name: 'model execution fails (Reshape of 6 elements to [4,4])', path: V2('fails'), body: fails([4, 4]), status: 500, says: ["model 'fails'", 'failed to execute', 'Reshape'] },
];

interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
  readonly contentType: string | null;
  readonly ms: number;
}

describe('bad input gets a clear 4xx (or 500 for a failed run) and never hurts the server', () => {
  let runtime: RuntimeProcess;
  /** 400s answered per model on an inference route, which the metrics must have counted. */
  const answered400 = new Map<string, number>();
  const INFER_ROUTE = /^\/v2\/models\/([^/]+)(?:\/versions\/\d+)?\/infer$|^\/v1\/models\/([^/:]+)(?:\/versions\/\d+)?:predict$/;

  before(async () => {
    runtime = await startRuntime([
      ...HOSTILE_INPUT_MODEL_ARGS,
      '--max-body-bytes', String(MAX_BODY_BYTES),
      '--max-tensor-elements', String(MAX_TENSOR_ELEMENTS),
    ]);
  });
  after(async () => { await runtime?.stop(); });

  async function send(method: 'GET' | 'POST', path: string, body?: unknown, contentType: string | null = 'application/json'): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (method === 'POST' && contentType !== null) headers['content-type'] = contentType;
    const started = performance.now();
    const response = await fetch(`${runtime.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const text = await response.text();
    const ms = performance.now() - started;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const route = INFER_ROUTE.exec(path);
    if (method === 'POST' && route && response.status === 400) {
      const model = route[1] ?? route[2];
      answered400.set(model, (answered400.get(model) ?? 0) + 1);
    }
    return { status: response.status, body: parsed, text, contentType: response.headers.get('content-type'), ms };
  }

  /** The contract's error shape: exactly `{"error": "<non-empty string>"}`, as JSON; returns the message. */
  function errorMessage(answer: Answer): string {
    assert.ok(answer.body !== undefined, `the body is not JSON: ${answer.text.slice(0, 200)}`);
    assert.match(answer.contentType ?? '', /^application\/json/);
    assert.equal(typeof answer.body, 'object');
    assert.deepEqual(Object.keys(answer.body as object), ['error'], `body: ${answer.text.slice(0, 200)}`);
    const message = (answer.body as { error: unknown }).error;
    assert.equal(typeof message, 'string');
    assert.ok((message as string).length > 0, 'the message is empty');
    return message as string;
  }

  const metrics = async () => (await send('GET', '/metrics')).text;
  const rss = async () => Number(/^process_resident_memory_bytes (\S+)$/m.exec(await metrics())?.[1]);

  it('accepts the baselines the cases corrupt', async () => {
    for (const [path, body] of [
      [LIN, { inputs: [x()] }], [V2('typed'), typed()], [V2('all'), all()], [V2('static'), staticX([4, 3])],
      [V2('fails'), fails([2, 3])], [TF('lin'), { instances: [[1], [2]] }],
      [TF('typed'), { instances: [{ ids: [1], mask: [true], text: 'a' }, { ids: [2], mask: [false], text: 'b' }] }],
    ] as const) {
      const answer = await send('POST', path, body);
      assert.equal(answer.status, 200, `${path}: ${answer.text.slice(0, 300)}`);
    }
  });

  for (const c of CASES) {
    it(`${c.status} for ${c.name}`, async () => {
      const answer = await send(c.method ?? 'POST', c.path, c.body, c.contentType);
      assert.equal(answer.status, c.status, `expected ${c.status}, got ${answer.status}: ${answer.text.slice(0, 300)}`);
      const message = errorMessage(answer);
      for (const word of c.says) {
        assert.ok(typeof word === 'string' ? message.includes(word) : word.test(message), `the message should mention ${String(word)}: ${message}`);
      }
    });
  }

  it('413 that a client still sending a declared body over the limit reads, on a connection that serves on', async () => {
    // fetch (undici, as in Node) sends the whole body whatever the answer: were the connection closed on the 413, a
    // body larger than the socket buffers would meet a reset (EPIPE) instead of the answer. Megabytes, several times
    // the limit, as a client with a wrong idea of the limit sends.
    const limit = 4_000_000;
    const server = await startRuntime(['--model', `lin=${MODELS.linearRegression}`, '--max-body-bytes', String(limit)]);
    const agent = new Agent({ connections: 1 });
    try {
      for (const size of [limit + 1, limit * 3]) {
        const response = await undiciFetch(`${server.url}${LIN}`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.alloc(size, 0x31), dispatcher: agent,
        });
        assert.equal(response.status, 413);
        assert.notEqual(response.headers.get('connection'), 'close', 'the connection stays open while the body is read and discarded');
        assert.match(await response.text(), new RegExp(`limit of ${limit} bytes`));
      }
      const next = await undiciFetch(`${server.url}/v2/health/ready`, { dispatcher: agent });
      assert.equal(next.status, 200);
    } finally {
      await agent.close();
      assert.equal(await server.stop(), 0);
    }
  });

  it('413 for a chunked body over the limit (no Content-Length)', async () => {
    // Written a chunk at a time, stopping at the answer: the server answers 413 as soon as the limit is crossed
    // and closes the connection, so a client that kept writing would get EPIPE instead of reading the answer.
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = httpRequest(`${runtime.url}${LIN}`, { method: 'POST', headers: { 'content-type': 'application/json' } });
      let answered = false;
      request.on('response', (response) => {
        answered = true;
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => { text += chunk; });
        response.on('end', () => { resolve({ status: response.statusCode ?? 0, text }); request.destroy(); });
      });
      request.on('error', (error) => { if (!answered) reject(error); });
      const chunk = ' '.repeat(8192);
      let written = 0;
      const writeNext = () => {
        if (answered) return;
        if (written > MAX_BODY_BYTES * 4) return reject(new Error(`no answer after ${written} bytes`));
        request.write(chunk);
        written += chunk.length;
        setTimeout(writeNext, 10);
      };
      request.flushHeaders();
      writeNext();
    });
    assert.equal(answer.status, 413, answer.text);
    const body = JSON.parse(answer.text) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['error']);
    assert.ok(String(body.error).includes(String(MAX_BODY_BYTES)), answer.text);
  });

  // The brief asked for 400 here, but commit 1c95fae dropped the dim_param cross-check on purpose: onnxruntime
  // does not require equal dim_params to agree, so refusing would refuse requests the model runs. Pinned here so
  // the choice stays deliberate; flip to 400 (naming 'batch') if the cross-check comes back.
  it('serves a symbolic dim mismatch between inputs as onnxruntime runs it (no dim_param cross-check)', async () => {
    for (const [name, path, body] of [
      ['batch (ids [2,3], mask [3,3])', V2('typed'), typed({ mask: { shape: [3, 3], data: new Array(9).fill(true) } })],
      ['batch (text [3])', V2('typed'), typed({ text: { shape: [3], data: ['a', 'b', 'c'] } })],
      ['seq (mask [2,4])', V2('typed'), typed({ mask: { shape: [2, 4], data: new Array(8).fill(true) } })],
      ['TF batch (ids [1,2], mask [2,2])', TF('typed'), { inputs: { ids: [[1, 2]], mask: [[true, false], [true, false]], text: ['a'] } }],
    ] as const) {
      const answer = await send('POST', path, body);
      assert.equal(answer.status, 200, `${name}: ${answer.text.slice(0, 300)}`);
    }
  });

  it('refuses absurd declared shapes with 400 in under a second, allocating nothing', async () => {
    const before = await rss();
    assert.ok(before > 0, 'process_resident_memory_bytes is exported');
    const huge: [string, string, unknown, string[]][] = [
      ['[1e9, 1] FP32', LIN, { inputs: [x({ shape: [1e9, 1], data: [1] })] }, ["input 'x'", '1000000000, 1', String(MAX_TENSOR_ELEMENTS), '--max-tensor-elements']],
      ['[2^40, 1] FP32', LIN, { inputs: [x({ shape: [2 ** 40, 1], data: [1] })] }, ["input 'x'", '1099511627776, 1', String(MAX_TENSOR_ELEMENTS)]],
      ['[1e9] for every type', V2('all'), allShaped([1e9]), ["input 'in_bool'", '1000000000', String(MAX_TENSOR_ELEMENTS)]],
      ['[1e9] BYTES among [1] inputs', V2('all'), all('bytes', { shape: [1e9] }), ["input 'in_bytes'", '1000000000']],
      ['[2^26, 2^26] INT64', V2('typed'), typed({ ids: { shape: [2 ** 26, 2 ** 26] } }), ["input 'ids'", String(2 ** 26)]],
      ['[limit + 1] BOOL', V2('all'), all('bool', { shape: [MAX_TENSOR_ELEMENTS + 1] }), ["input 'in_bool'", String(MAX_TENSOR_ELEMENTS + 1), String(MAX_TENSOR_ELEMENTS)]],
    ];
    for (const [name, path, body, says] of huge) {
      const answer = await send('POST', path, body);
      assert.equal(answer.status, 400, `${name}: ${answer.text.slice(0, 300)}`);
      const message = errorMessage(answer);
      for (const word of says) assert.ok(message.includes(word), `${name}: the message should mention ${JSON.stringify(word)}: ${message}`);
      assert.ok(answer.ms < 1000, `${name} took ${answer.ms.toFixed(0)} ms`);
    }
    const grown = (await rss()) - before;
    assert.ok(grown < 200 * 1024 * 1024, `resident memory grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
  });

  it('is not polluted by __proto__ or constructor keys', async () => {
    const attempts: [string, string][] = [
      [LIN, `{"__proto__":{"polluted":true,"inputs":[1]},"inputs":[${JSON.stringify(x())}]}`],
      [LIN, `{"inputs":[{"name":"constructor","datatype":"FP32","shape":[2,1],"data":[1,2]}]}`],
      [LIN, `{"inputs":[{"name":"__proto__","datatype":"FP32","shape":[2,1],"data":[1,2]}]}`],
      [LIN, `{"inputs":[{"__proto__":{"name":"x","datatype":"FP32","shape":[2,1],"data":[1,2]}}]}`],
      [LIN, `{"constructor":{"prototype":{"polluted":true}},"inputs":[${JSON.stringify(x())}]}`],
      [TF('lin'), `{"instances":[{"x":[1],"constructor":[2]}]}`],
      [TF('lin'), `{"__proto__":{"instances":[[1]]}}`],
      [TF('typed'), `{"inputs":{"constructor":[1],"__proto__":{"ids":[[1]]}}}`],
      [TF('typed'), `{"instances":[{"constructor":{"prototype":{"polluted":true}},"__proto__":{"polluted":true}}]}`],
    ];
    for (const [path, body] of attempts) {
      const answer = await send('POST', path, body);
      assert.ok(answer.status === 200 || answer.status === 400, `${body}: ${answer.status} ${answer.text.slice(0, 300)}`);
      if (answer.status === 400) errorMessage(answer);
    }
    // Had any of them reached Object.prototype, these would no longer be refused this way.
    const empty = await send('POST', LIN, {});
    assert.equal(empty.status, 400);
    assert.match(errorMessage(empty), /'inputs' must be .*received undefined/);
    const tfEmpty = await send('POST', TF('lin'), {});
    assert.equal(tfEmpty.status, 400);
    assert.match(errorMessage(tfEmpty), /needs 'instances'/);
  });

  it('is still ready, still answers correctly, and counted the 400s', async () => {
    assert.equal(runtime.process.exitCode, null, 'the runtime exited');
    assert.equal(runtime.process.signalCode, null, 'the runtime was killed');
    assert.equal((await send('GET', '/v2/health/ready')).status, 200);

    const xs = [-1, 0, 0.5, 10];
    const expected = await runReference(MODELS.linearRegression, { x: new ort.Tensor('float32', Float32Array.from(xs), [4, 1]) });
    const lin = await send('POST', LIN, { id: 'after', inputs: [x({ shape: [4, 1], data: xs })] });
    assert.equal(lin.status, 200, lin.text);
    assert.deepEqual(lin.body, {
      model_name: 'lin', model_version: '1', id: 'after',
      outputs: [{ name: 'y_pred', datatype: 'FP32', shape: [4, 1], data: Array.from(expected.y_pred.data as Float32Array) }],
    });
    const typedAnswer = await send('POST', V2('typed'), typed());
    assert.equal(typedAnswer.status, 200, typedAnswer.text);
    const outputs = Object.fromEntries((typedAnswer.body as { outputs: { name: string; data: unknown[] }[] }).outputs.map((o) => [o.name, o.data]));
    assert.deepEqual(outputs, {
      ids_doubled: [2, 4, 6, 8, 10, 12], mask_not: [false, true, false, true, false, true], ids_sum: [6, 15], text_out: ['a', 'b'],
    });
    const tf = await send('POST', TF('lin'), { instances: xs });
    assert.equal(tf.status, 200, tf.text);
    assert.deepEqual((tf.body as { predictions: number[][] }).predictions, Array.from(expected.y_pred.data as Float32Array, (y) => [y]));

    const text = await metrics();
    const count = (model: string, code: string) => text.split('\n')
      .filter((line) => line.startsWith(`${METRIC.requests}{`) && line.includes(`model="${model}"`) && line.includes(`code="${code}"`))
      .reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
    assert.ok((answered400.get('lin') ?? 0) > 50, 'the battery sent many 400s to lin');
    for (const [model, answered] of answered400) {
      assert.ok(count(model, '400') >= answered, `metrics count ${count(model, '400')} code="400" for ${model}, the battery got ${answered}`);
    }
    assert.ok(count('fails', '500') >= 1, 'the failed run is counted as code="500"');
    assert.ok(count('lin', '200') >= 3, 'the valid requests are counted as code="200"');
  });

  it('exits 0 on SIGTERM', async () => {
    assert.equal(await runtime.stop(), 0, runtime.stderr.join('\n'));
  });
});
