import { sourceKey } from './source-key.ts';

/**
 * Counts open connections overall and per source address (an IPv6 source per /64, sourceKey),
 * and says whether one more may open. Every listener of the rendezvous shares one, so the limits
 * hold across its ports.
 */
export class ConnLimiter {
  readonly #max: number;
  readonly #perIp: number;
  readonly #byIp = new Map<string, number>();
  #total = 0;

  constructor(max: number, perIp: number) {
    this.#max = max;
    this.#perIp = perIp;
  }

  get total(): number {
    return this.#total;
  }

  /** Takes a slot for `ip`, or says which limit is full. */
  acquire(address: string): 'ok' | 'total' | 'per_ip' {
    if (this.#total >= this.#max) return 'total';
    const ip = sourceKey(address);
    const n = this.#byIp.get(ip) ?? 0;
    if (n >= this.#perIp) return 'per_ip';
    this.#byIp.set(ip, n + 1);
    this.#total++;
    return 'ok';
  }

  release(address: string): void {
    const ip = sourceKey(address);
    const n = this.#byIp.get(ip);
    if (n === undefined) return;
    if (n <= 1) this.#byIp.delete(ip);
    else this.#byIp.set(ip, n - 1);
    this.#total--;
  }
}
