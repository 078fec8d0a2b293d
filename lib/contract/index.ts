// `modelship/contract`: what the constructs and the runtime agree on, re-exported from the package both depend on.
export * from '@modelship/contract';
