export * from './metrics';
export * from './runtime';
export * from './settings';
