import type { Context, Hono } from 'hono';
import { isIP } from 'node:net';
import { z } from 'zod';
import type { PeerView } from '../../rendezvous/rendezvous.ts';
import { ApiError, badRequest, notFound } from '../errors.ts';
import type { User } from '../users.ts';
import type { Env } from './app.ts';

/** What the rendezvous routes need (the gateway's Rendezvous, or a fake). */
export interface RendezvousApi {
  info(): { key: string; enforced: boolean; ports: Record<string, number | null>; peers_in_memory: number; peers_online: number; peers_stored: number };
  peers(o: { after?: string; limit?: number; online?: boolean }): PeerView[];
  deletePeer(id: string): boolean;
  blocked(): string[];
  block(ip: string): void;
  unblock(ip: string): boolean;
}

const BlockBody = z.object({ ip: z.string().refine((s) => isIP(s) !== 0, 'must be an IPv4 or IPv6 address') }).strict();

/**
 * /api/v1/rendezvous…: the RustDesk peer table and the address block list, for admins. 404 with
 * a hint when the gateway runs without a rendezvous (docs/api.md).
 */
export function rendezvousRoutes(
  app: Hono<Env>, rdv: () => RendezvousApi | null, admin: (c: Context<Env>) => User,
  audit: (e: { event: string; user: string; clientIp: string; target: string }) => void,
): void {
  const need = (c: Context<Env>): RendezvousApi => {
    admin(c);
    const r = rdv();
    if (!r) throw new ApiError(404, 'rendezvous_off', 'this gateway runs no rendezvous: start it with --rendezvous-port N (or rendezvous.port in the config)');
    return r;
  };
  app.get('/api/v1/rendezvous', (c) => c.json(need(c).info()));
  app.get('/api/v1/rendezvous/peers', (c) => {
    const r = need(c);
    const limit = Math.min(1000, Math.max(1, Number(c.req.query('limit') ?? 100) || 100));
    const after = c.req.query('after');
    const peers = r.peers({ limit, online: c.req.query('online') === '1' || c.req.query('online') === 'true', ...(after ? { after } : {}) });
    return c.json({
      peers: peers.map((p) => ({
        id: p.id, online: p.online, last_registration: p.lastRegistration ? new Date(p.lastRegistration).toISOString() : null,
        ip: p.ip, nat_type: p.natType, transport: p.transport,
      })),
      next_after: peers.length === limit ? peers[peers.length - 1]!.id : null,
    });
  });
  app.delete('/api/v1/rendezvous/peers/:id', (c) => {
    const r = need(c);
    const id = c.req.param('id');
    if (!r.deletePeer(id)) throw notFound(`rendezvous peer "${id}"`);
    audit({ event: 'rdv_peer_deleted', user: c.get('user').name, clientIp: c.get('clientIp'), target: id });
    return c.json({ deleted: id });
  });
  app.get('/api/v1/rendezvous/blocked', (c) => c.json({ blocked: need(c).blocked() }));
  app.post('/api/v1/rendezvous/blocked', async (c) => {
    const r = need(c);
    let raw: unknown;
    try {
      raw = JSON.parse(await c.req.text());
    } catch {
      throw badRequest('request body must be JSON, like {"ip":"203.0.113.9"}');
    }
    const b = BlockBody.safeParse(raw);
    if (!b.success) throw badRequest(b.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
    try {
      r.block(b.data.ip);
    } catch (e) {
      throw new ApiError(409, 'block_list_full', (e as Error).message);
    }
    audit({ event: 'rdv_ip_blocked', user: c.get('user').name, clientIp: c.get('clientIp'), target: b.data.ip });
    return c.json({ blocked: b.data.ip }, 201);
  });
  app.delete('/api/v1/rendezvous/blocked/:ip', (c) => {
    const r = need(c);
    const ip = c.req.param('ip');
    if (!r.unblock(ip)) throw notFound(`blocked address ${ip}`);
    audit({ event: 'rdv_ip_unblocked', user: c.get('user').name, clientIp: c.get('clientIp'), target: ip });
    return c.json({ unblocked: ip });
  });
}
