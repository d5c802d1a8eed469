export * from './fake-cakemail/index.js';
