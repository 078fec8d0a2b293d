// The `modelship` entry point. The cdk8s constructs land here (issue 4); the runtime contract is exported now so
// that tooling written against the runtime can import the same names.
export * as contract from './contract';
