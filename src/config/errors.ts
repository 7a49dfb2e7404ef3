/** A configuration problem: names the key and says what to do. Exit code 2 (usage/config). */
export class ConfigError extends Error {
  readonly code = 'DK_CONFIG';
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
