export * from './change-filter';
export * from './redis-connection';
export * from './registry';
export * from './two-level-cache';
export type * from './types';
