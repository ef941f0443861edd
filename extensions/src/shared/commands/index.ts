/** Pure command rules shared by the commands hook and endpoint (no I/O). */
export * from './config';
export * from './lifecycle';
export * from './parse';
export * from './validation';
