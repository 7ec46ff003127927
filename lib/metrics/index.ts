export * from './recorder';
export * from './registry';
export * from './threshold';
export * from './window';
export * from './instrument';
