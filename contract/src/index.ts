// @modelship/contract: what the runtime and the constructs must agree on, in one package that depends on neither.
export * from './datatypes';
export * from './drift-profile';
export * from './metrics';
export * from './model-uri';
export * from './onnx-file';
export * from './parse-settings';
export * from './runtime';
export * from './settings';
export * from './signature';
export * from './usage-error';
