export * from './database';
export * from './query';
export * from './registry';
export * from './schema';
export * from './writer';
