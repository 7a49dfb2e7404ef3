import type { Logger } from '../util/log.ts';
import { FailureLimiter } from './api/rate-limit.ts';
import { FailureLog } from './failure-log.ts';
import type { GatewayMetrics } from './metrics.ts';

export interface AuthGuardInit {
  /** Failures per source address within a minute before that address must wait. */
  perIp: number;
  /** Failures for one user name within `userWindowMs` before that name must wait, from any address. */
  perUser: number;
  userWindowMs: number;
  /** One log line per source per interval. */
  logIntervalMs: number;
  log: Logger;
  metrics: GatewayMetrics;
  now?: () => number;
}

export interface Blocked {
  retryAfter: number;
  by: 'ip' | 'user';
  message: string;
}

/**
 * The one policy for failed credentials on every path that takes them (API tokens, TOTP codes,
 * `dk connect` tokens, agent handshakes): a per-address limit, a per-user-name limit that holds
 * whatever addresses the guesses come from, aggregated log lines and counters.
 */
export class AuthGuard {
  readonly #ip: FailureLimiter;
  readonly #user: FailureLimiter;
  readonly #init: AuthGuardInit;
  readonly failures: FailureLog;

  constructor(init: AuthGuardInit) {
    this.#init = init;
    this.#ip = new FailureLimiter(init.perIp, 60_000, 10_000, init.now);
    this.#user = new FailureLimiter(init.perUser, init.userWindowMs, 10_000, init.now);
    this.failures = new FailureLog({
      intervalMs: init.logIntervalMs,
      ...(init.now ? { now: init.now } : {}),
      write: (fields, msg) => init.log.warn(fields, msg),
    });
  }

  /** Whether a request from `ip` (for `user`, when the credential names one) must wait, and why. */
  blocked(ip: string, user?: string): Blocked | null {
    const byIp = this.#ip.retryAfter(ip);
    if (byIp > 0) return this.#blocked('ip', byIp, `too many failed authentications from ${ip}; retry in ${byIp} s`);
    if (user === undefined) return null;
    const byUser = this.#user.retryAfter(user);
    if (byUser > 0) return this.#blocked('user', byUser, `too many failed authentications for user "${user}"; retry in ${byUser} s`);
    return null;
  }

  /** Records a failed credential from `ip` (naming `user` when it does) with a reason for the log. */
  failed(ip: string, user: string | null, reason: string): void {
    this.#ip.fail(ip);
    if (user !== null) {
      const wasBlocked = this.#user.retryAfter(user) > 0;
      this.#user.fail(user);
      if (!wasBlocked && this.#user.retryAfter(user) > 0) {
        this.#init.log.warn({ user, source: ip, retry_after: this.#user.retryAfter(user) }, 'user locked out after repeated failed authentications');
      }
    }
    this.failures.fail(ip, user === null ? reason : `${reason}:${user}`);
  }

  #blocked(by: 'ip' | 'user', retryAfter: number, message: string): Blocked {
    this.#init.metrics.authBlocked.inc({ by });
    return { by, retryAfter, message };
  }
}
