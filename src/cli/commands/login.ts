import type { Command } from 'commander';
import { ConfigError } from '../../config/errors.ts';
import { callApi } from '../api-client.ts';
import { apiOptions, tokenOf, warnLine, type ApiOpts } from '../common.ts';
import { loginPath, removeLogin, writeLogin } from '../login-file.ts';

/** `dk login` and `dk logout`: the API address and token stored for the other API commands. */
export function loginCommands(program: Command): void {
  apiOptions(program.command('login')
    .description('check an API token and store it with the API address (mode 0600) for the other API commands'))
    .addHelpText('after', `
The credentials go to $XDG_CONFIG_HOME/doorkeeper/credentials.json (default ~/.config/doorkeeper/),
mode 0600. Every API command (access, scan, backends, grants, revoke, sessions, kill, audit, users)
then needs no --api or --token; --api, --token, --token-file, DK_API and DK_TOKEN still override it,
and the stored token is sent only to the stored address.

Examples:
  dk login --api http://gw.example.net:3535 --token-file ~/dk-token
  DK_TOKEN=dk_… dk login --api http://127.0.0.1:3535
  dk grants           # uses the stored login
  dk logout`)
    .action(async (o: ApiOpts, cmd: Command) => {
      if (o.totp) {
        throw new ConfigError('dk login stores an API token; a TOTP code is good for one request and the API has no exchange of a code for a token. '
          + 'Pass --totp USER:CODE to each command instead, or ask an admin for a token (dk users add NAME)');
      }
      const token = tokenOf(o, cmd, warnLine);
      if (!token) throw new ConfigError('dk login needs a token: --token-file FILE, DK_TOKEN, or --token TOKEN');
      // --api-fingerprint (a pinned HTTPS certificate), where the API options have it, is stored too.
      const fingerprint = (o as ApiOpts & { apiFingerprint?: string }).apiFingerprint || undefined;
      // Checked before it is stored: any user may list backends, so this works for every valid token.
      const r = await callApi({ api: o.api, token, ...(fingerprint ? { fingerprint } : {}) }, 'GET', 'api/v1/backends');
      const path = loginPath();
      writeLogin(path, { api: o.api, token, ...(fingerprint ? { fingerprint } : {}) });
      const n = Array.isArray(r.backends) ? r.backends.length : 0;
      if (o.json) return void process.stdout.write(JSON.stringify({ api: o.api, credentials_file: path, backends: n }, null, 2) + '\n');
      process.stdout.write(`logged in to ${o.api} (the token sees ${n} backend${n === 1 ? '' : 's'})\ncredentials stored in ${path} (mode 600); dk logout removes them\n`);
    });

  program.command('logout')
    .description("remove dk login's stored API address and token")
    .addHelpText('after', '\nExample:\n  dk logout')
    .action(() => {
      const path = loginPath();
      process.stdout.write(removeLogin(path) ? `removed ${path}\n` : `not logged in (no ${path})\n`);
    });
}
