/**
 * The NAT lab (SPEC §7c): Linux network namespaces, veth pairs and iptables, built by the tests
 * themselves as root. Nothing touches the host's own network: every veth is created inside the
 * lab's namespaces, and every address is from the benchmark range 198.18.0.0/15 (RFC 2544), which
 * is never routed on the internet and is not one of this machine's networks.
 *
 *   namespace      interface   address            role
 *   pub            lo          198.18.0.1/32      "the internet": the rendezvous/gateway address
 *                  ra          198.18.1.1/24      link to router A
 *                  rb          198.18.2.1/24      link to router B
 *   ra (router A)  wan         198.18.1.2/24      NAT A's public address
 *                  lan         198.19.1.1/24
 *   a  (client)    eth0        198.19.1.2/24      LAN A
 *   rb (router B)  wan         198.18.2.2/24      NAT B's public address
 *                  lan         198.19.2.1/24      a bridge over la (agent) and lt (target)
 *   b  (agent)     eth0        198.19.2.2/24      LAN B
 *   t  (target)    eth0        198.19.2.3/24      LAN B
 *
 * "pub" forwards between the routers and has no route to the LANs, as the internet has none to
 * private networks: a packet for a LAN address gets an ICMP "unreachable" back.
 *
 * Router modes (what each NAT does; SPEC §7c):
 *   cone       MASQUERADE (endpoint-independent mapping); the router's own stack drops unsolicited
 *              input on its WAN side (INPUT -i wan: ESTABLISHED,RELATED accepted, the rest dropped)
 *   home       cone, and unsolicited inbound is also dropped in FORWARD, as home routers do
 *   symmetric  MASQUERADE --random-fully (a new public port per destination), WAN input dropped
 *   rst        bare MASQUERADE: the router's stack answers an unsolicited SYN with RST, which also
 *              kills the sender's conntrack entry on its own NAT
 *
 * Names: `dklab-<pid>-<random>-<role>`, so parallel tests never collide; `close()` deletes
 * everything, and `createLab` first removes stale labs left by a process that died.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdir, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';

export type NatMode = 'cone' | 'home' | 'symmetric' | 'rst';
export const NAT_MODES: readonly NatMode[] = ['cone', 'home', 'symmetric', 'rst'];

export const LAB_PREFIX = 'dklab';
/** A lab older than this is stale whoever made it: every lab test ends well within it. */
const STALE_AGE_MS = 5 * 60_000;
/** A lab whose process is gone is stale after this (it may have just been made by a process that is starting). */
const ORPHAN_AGE_MS = 30_000;
/** Every command the lab runs gets this long. */
const CMD_TIMEOUT_MS = 15_000;

export const LAB_ADDR = {
  rendezvous: '198.18.0.1',
  wanA: '198.18.1.2',
  wanB: '198.18.2.2',
  a: '198.19.1.2',
  b: '198.19.2.2',
  target: '198.19.2.3',
} as const;

export type LabRole = 'pub' | 'ra' | 'rb' | 'a' | 'b' | 't';

export interface LabProcess {
  readonly child: ChildProcess;
  /** Resolves with the next stdout line that parses as a JSON object with this `type`; rejects when the process exits first or after `timeoutMs`. */
  next(type: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** The JSON lines received and not yet taken by `next`. */
  readonly messages: Record<string, unknown>[];
  stderr(): string;
  /** Resolves with the exit code (null after a signal). */
  readonly exited: Promise<number | null>;
  kill(): void;
}

export interface Lab {
  readonly id: string;
  readonly natA: NatMode;
  readonly natB: NatMode;
  /** The namespace name of a role, for `run` and `exec`. */
  ns(role: LabRole): string;
  /** Spawns `node FILE ARGS…` (this Node, process.execPath) inside the role's namespace; stdout lines are JSON messages. `env` adds to the environment. */
  run(role: LabRole, file: string, args?: string[], env?: Record<string, string>): LabProcess;
  /** Runs a command inside the role's namespace and returns its stdout. */
  exec(role: LabRole, cmd: string, args: string[]): Promise<string>;
  /** Replaces a router's rules with another mode's. */
  setNat(router: 'A' | 'B', mode: NatMode): Promise<void>;
  /** Kills the lab's processes and deletes its namespaces. Never throws. */
  close(): Promise<void>;
}

/** The sbin directories, where Debian puts `ip` and `iptables`, even when PATH lacks them. */
const ENV = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` };

function run(cmd: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: CMD_TIMEOUT_MS, encoding: 'utf8', env: ENV }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function which(cmd: string): Promise<boolean> {
  for (const dir of ENV.PATH.split(':')) {
    if (dir === '') continue;
    try {
      if ((await stat(`${dir}/${cmd}`)).isFile()) return true;
    } catch { /* not in this directory */ }
  }
  return false;
}

let availability: Promise<string | undefined> | undefined;

/**
 * Why the lab cannot be built here, or undefined when it can: needs Linux, root, `ip` (iproute2)
 * and `iptables`, and the right to make a network namespace (a container without CAP_NET_ADMIN
 * has not). Tests call `t.skip(reason)` with the answer.
 */
export function labUnavailable(): Promise<string | undefined> {
  availability ??= (async () => {
    if (process.platform !== 'linux') return `the NAT lab needs Linux network namespaces (this is ${process.platform})`;
    if (process.getuid?.() !== 0) return 'the NAT lab needs root (ip netns, iptables); run the tests as root to include it';
    for (const [cmd, pkg] of [['ip', 'iproute2'], ['iptables', 'iptables'], ['iptables-restore', 'iptables']] as const) {
      if (!(await which(cmd))) return `the NAT lab needs \`${cmd}\` (Debian package ${pkg}; .ci/run installs it)`;
    }
    const probe = `${LAB_PREFIX}-${process.pid}-probe${randomBytes(3).toString('hex')}-pub`;
    try {
      await run('ip', ['netns', 'add', probe]);
    } catch (err) {
      return `cannot create a network namespace here (${(err as Error).message})`;
    }
    try {
      // The rules of the modes themselves: MASQUERADE (--random-fully) and conntrack matches need kernel support.
      await run('ip', ['netns', 'exec', probe, 'iptables-restore'], natRules('home'));
      await run('ip', ['netns', 'exec', probe, 'iptables-restore'], natRules('symmetric'));
    } catch (err) {
      return `iptables NAT rules do not work inside a network namespace here (${(err as Error).message})`;
    } finally {
      await run('ip', ['netns', 'del', probe]).catch(() => undefined);
    }
    return undefined;
  })();
  return availability;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes namespaces of labs that were not closed: older than STALE_AGE_MS, or whose process is
 * gone (after ORPHAN_AGE_MS). Only names with the lab prefix are touched. Processes left inside
 * such a namespace end by themselves (every lab program has a hard lifetime).
 */
export async function cleanStaleLabs(now = Date.now()): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir('/run/netns');
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    const m = /^dklab-(\d+)-[0-9a-z]+-[a-z]+$/.exec(name);
    if (!m) continue;
    let age: number;
    try {
      age = now - (await stat(`/run/netns/${name}`)).mtimeMs;
    } catch {
      continue;
    }
    const pid = Number(m[1]);
    const stale = age > STALE_AGE_MS || (pid !== process.pid && !pidAlive(pid) && age > ORPHAN_AGE_MS);
    if (!stale) continue;
    await run('ip', ['netns', 'del', name]).then(() => removed.push(name), () => undefined);
  }
  return removed;
}

/** The iptables-restore text of one router mode (filter and nat tables, replaced as a whole). */
export function natRules(mode: NatMode): string {
  const masquerade = mode === 'symmetric' ? '-A POSTROUTING -o wan -j MASQUERADE --random-fully' : '-A POSTROUTING -o wan -j MASQUERADE';
  const filter: string[] = [];
  if (mode !== 'rst') {
    filter.push('-A INPUT -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT', '-A INPUT -i wan -j DROP');
  }
  if (mode === 'home') {
    filter.push('-A FORWARD -i wan -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT', '-A FORWARD -i wan -j DROP');
  }
  return [
    '*filter', ':INPUT ACCEPT [0:0]', ':FORWARD ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ...filter, 'COMMIT',
    '*nat', ':PREROUTING ACCEPT [0:0]', ':INPUT ACCEPT [0:0]', ':OUTPUT ACCEPT [0:0]', ':POSTROUTING ACCEPT [0:0]', masquerade, 'COMMIT',
    '',
  ].join('\n');
}

/** Builds a lab with the two routers in the given modes. Throws when a step fails (after removing what it made). */
export async function createLab(opts: { natA: NatMode; natB: NatMode }): Promise<Lab> {
  await cleanStaleLabs();
  const id = `${LAB_PREFIX}-${process.pid}-${randomBytes(4).toString('hex')}`;
  const ns = (role: LabRole): string => `${id}-${role}`;
  const roles: LabRole[] = ['pub', 'ra', 'rb', 'a', 'b', 't'];
  const made: string[] = [];
  const children = new Set<LabProcess>();
  const ip = (role: LabRole, ...args: string[]): Promise<string> => run('ip', ['-n', ns(role), ...args]);
  const inNs = (role: LabRole, cmd: string, args: string[], input?: string): Promise<string> => run('ip', ['netns', 'exec', ns(role), cmd, ...args], input);
  const sysctl = (role: LabRole, key: string, value: string): Promise<string> =>
    // /proc/sys/net shows the namespace of the process reading it; no dependency on procps.
    inNs(role, 'sh', ['-c', `echo ${value} > /proc/sys/${key.replaceAll('.', '/')}`]);

  const close = async (): Promise<void> => {
    await Promise.all([...children].map(async (p) => {
      p.kill();
      await p.exited.catch(() => undefined);
    }));
    for (const name of made.reverse()) await run('ip', ['netns', 'del', name]).catch(() => undefined);
    made.length = 0;
  };

  try {
    for (const role of roles) {
      await run('ip', ['netns', 'add', ns(role)]);
      made.push(ns(role));
      await ip(role, 'link', 'set', 'lo', 'up');
    }
    // Veth pairs made inside the namespaces: `ip -n X link add A type veth peer name B netns Y`.
    await ip('ra', 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'ra', 'netns', ns('pub'));
    await ip('rb', 'link', 'add', 'wan', 'type', 'veth', 'peer', 'name', 'rb', 'netns', ns('pub'));
    await ip('ra', 'link', 'add', 'lan', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns('a'));
    await ip('rb', 'link', 'add', 'lan', 'type', 'bridge');
    await ip('rb', 'link', 'add', 'la', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns('b'));
    await ip('rb', 'link', 'add', 'lt', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns('t'));
    for (const port of ['la', 'lt']) {
      await ip('rb', 'link', 'set', port, 'master', 'lan');
      await ip('rb', 'link', 'set', port, 'up');
    }
    const addrs: [LabRole, string, string][] = [
      ['pub', 'lo', `${LAB_ADDR.rendezvous}/32`], ['pub', 'ra', '198.18.1.1/24'], ['pub', 'rb', '198.18.2.1/24'],
      ['ra', 'wan', `${LAB_ADDR.wanA}/24`], ['ra', 'lan', '198.19.1.1/24'], ['a', 'eth0', `${LAB_ADDR.a}/24`],
      ['rb', 'wan', `${LAB_ADDR.wanB}/24`], ['rb', 'lan', '198.19.2.1/24'], ['b', 'eth0', `${LAB_ADDR.b}/24`], ['t', 'eth0', `${LAB_ADDR.target}/24`],
    ];
    for (const [role, dev, cidr] of addrs) {
      await ip(role, 'addr', 'add', cidr, 'dev', dev);
      await ip(role, 'link', 'set', dev, 'up');
    }
    await ip('ra', 'route', 'add', 'default', 'via', '198.18.1.1');
    await ip('rb', 'route', 'add', 'default', 'via', '198.18.2.1');
    await ip('a', 'route', 'add', 'default', 'via', '198.19.1.1');
    await ip('b', 'route', 'add', 'default', 'via', '198.19.2.1');
    await ip('t', 'route', 'add', 'default', 'via', '198.19.2.1');
    for (const role of ['pub', 'ra', 'rb'] as const) await sysctl(role, 'net.ipv4.ip_forward', '1');
    // "pub" answers every packet for a LAN address with ICMP unreachable, not one a second (the
    // kernel's default rate limit), so a LAN candidate fails the same way in every run.
    await sysctl('pub', 'net.ipv4.icmp_ratelimit', '0');
    await inNs('ra', 'iptables-restore', [], natRules(opts.natA));
    await inNs('rb', 'iptables-restore', [], natRules(opts.natB));
  } catch (err) {
    await close();
    throw err;
  }

  const spawnIn = (role: LabRole, file: string, args: string[] = [], env: Record<string, string> = {}): LabProcess => {
    const child = spawn('ip', ['netns', 'exec', ns(role), process.execPath, file, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...ENV, ...env } });
    const messages: Record<string, unknown>[] = [];
    const waiters = new Set<() => void>();
    let stderr = '';
    let exitCode: number | null | undefined;
    child.stderr.on('data', (c: Buffer) => { if (stderr.length < 64 * 1024) stderr += c.toString(); });
    createInterface({ input: child.stdout }).on('line', (line) => {
      try {
        const v: unknown = JSON.parse(line);
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) messages.push(v as Record<string, unknown>);
      } catch { /* not a message */ }
      for (const w of waiters) w();
    });
    const exited = once(child, 'exit').then(([code]) => {
      exitCode = code as number | null;
      for (const w of waiters) w();
      return exitCode;
    });
    child.stdin.on('error', () => undefined);
    const proc: LabProcess = {
      child,
      messages,
      stderr: () => stderr,
      exited,
      kill: () => { if (exitCode === undefined) child.kill('SIGKILL'); },
      next: (type, timeoutMs = 20_000) => new Promise((resolve, reject) => {
        let seen = 0;
        const check = (): void => {
          for (; seen < messages.length; seen++) {
            const m = messages[seen]!;
            if (m.type === type) { finish(); messages.splice(seen, 1); resolve(m); return; }
          }
          if (exitCode !== undefined) { finish(); reject(new Error(`${file} in ${role} exited (${exitCode}) before sending ${type}; last messages: ${JSON.stringify(messages.slice(-3))}; stderr: ${stderr.slice(-2000)}`)); }
        };
        const timer = setTimeout(() => { finish(); reject(new Error(`no ${type} from ${file} in ${role} within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`)); }, timeoutMs);
        const finish = (): void => { clearTimeout(timer); waiters.delete(check); };
        waiters.add(check);
        check();
      }),
    };
    children.add(proc);
    void exited.then(() => children.delete(proc));
    return proc;
  };

  return {
    id,
    natA: opts.natA,
    natB: opts.natB,
    ns,
    run: spawnIn,
    exec: (role, cmd, args) => inNs(role, cmd, args),
    setNat: async (router, mode) => { await inNs(router === 'A' ? 'ra' : 'rb', 'iptables-restore', [], natRules(mode)); },
    close,
  };
}
