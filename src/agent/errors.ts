/** Errors that end an agent (README and docs/configuration.md list the exit codes). */

/**
 * The gateway failed to prove it holds the pinned key on several connections in a row: the
 * agent's gateway_key is not this gateway's key. Retrying cannot fix that, so the agent stops.
 */
export class GatewayKeyMismatchError extends Error {
  readonly code = 'DK_AGENT_GATEWAY_KEY';
  readonly exitCode = 6;
  constructor(gateway: string, attempts: number) {
    super(`the gateway at ${gateway} does not hold the pinned gateway_key (it failed to prove it on ${attempts} connections in a row): `
      + 'print its key on the gateway with `dk pubkey --data-dir DIR` and pass that as --gateway-key (or gateway_key in the config)');
    this.name = 'GatewayKeyMismatchError';
  }
}

/**
 * The gateway answered, inside the encrypted link (so it is the pinned gateway speaking), that
 * no backend it has matches this agent's name and key, on several connections in a row.
 */
export class GatewayRefusedError extends Error {
  readonly code = 'DK_AGENT_REFUSED';
  readonly exitCode = 3;
  constructor(gateway: string, name: string, attempts: number) {
    super(`the gateway at ${gateway} refused this agent on ${attempts} connections in a row: it has no backend "${name}" with this key. `
      + 'Use the name and key of a backend in the gateway\'s config (backends:, or --backend NAME=KEY); `dk init` writes a matching pair');
    this.name = 'GatewayRefusedError';
  }
}
