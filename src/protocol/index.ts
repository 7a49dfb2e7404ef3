export * from './frame.ts';
export * from './errors.ts';
export * from './encode.ts';
export * from './decode.ts';
export * from './command.ts';
export * from './address.ts';
export * from './allowlist.ts';
export * from './agent-info.ts';
