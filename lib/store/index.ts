export * from './database';
export * from './registry';
export * from './schema';
export * from './writer';
