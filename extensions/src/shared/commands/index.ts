/** Pure command rules shared by the commands hook and endpoint (no I/O). */
export * from './config';
export * from './deny-list';
export * from './lifecycle';
export * from './validation';
