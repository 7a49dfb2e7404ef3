import { randomBytes } from 'node:crypto';
import type { Credential } from '../auth/handshake.ts';
import type { GatewayConfig } from '../config/gateway-config.ts';
import { PortSet } from '../util/port-range.ts';
import type { BackendRepo, UserRepo } from './stores.ts';

export interface Backend extends Credential {
  /** Ports this backend's agent may publish static tunnels on. */
  exposePorts: PortSet;
}

/** What gets generated on a first start, printed once by the CLI. */
export interface FirstRun {
  adminToken?: string;
  backend?: { name: string; key: string };
}

/**
 * The backends agents may log in as: those in the database, then those in the config (which win),
 * and on a first start with none a generated `default`. Keys take effect at the next handshake.
 */
export class Backends {
  readonly #all = new Map<string, Backend>();
  readonly #repo: BackendRepo;
  readonly #defaultPorts: string;

  constructor(repo: BackendRepo, config: Pick<GatewayConfig, 'backends' | 'expose_ports'>) {
    this.#repo = repo;
    this.#defaultPorts = config.expose_ports;
    for (const r of repo.all()) this.#all.set(r.name, { name: r.name, key: r.key, exposePorts: PortSet.parse(config.expose_ports) });
    for (const [name, b] of Object.entries(config.backends)) {
      this.#all.set(name, { name, key: b.key, exposePorts: PortSet.parse(b.expose_ports ?? config.expose_ports) });
    }
  }

  get size(): number {
    return this.#all.size;
  }
  has(name: string): boolean {
    return this.#all.has(name);
  }
  get(name: string): Backend | undefined {
    return this.#all.get(name);
  }
  names(): string[] {
    return [...this.#all.keys()].sort();
  }
  /** Every credential, for verifying an agent's handshake. */
  credentials(): Iterable<Credential> {
    return this.#all.values();
  }

  /** Adds (or re-keys) a backend, in the database too. */
  add(name: string, key: string): void {
    this.#repo.upsert(name, key);
    this.#all.set(name, { name, key, exposePorts: PortSet.parse(this.#defaultPorts) });
  }
}

/** First start: the admin token (unless configured) and a `default` backend when there is none. */
export function bootstrap(users: UserRepo, backends: Backends, adminToken: string | undefined): FirstRun {
  const first: FirstRun = {};
  if (adminToken) {
    if (users.byName('admin')) users.setToken('admin', adminToken);
    else users.create('admin', { admin: true, token: adminToken });
  } else if (users.count() === 0) {
    first.adminToken = users.create('admin', { admin: true }).token;
  }
  if (backends.size === 0) {
    const key = randomBytes(18).toString('base64url');
    backends.add('default', key);
    first.backend = { name: 'default', key };
  }
  return first;
}
