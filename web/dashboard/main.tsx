import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { renderSVG } from 'uqr';
import { api, ApiFailure, setCsrf, type Me } from './api.ts';
import { Chart } from './chart.tsx';
import { ago, bytes, time, until } from './format.ts';

type Row = Record<string, any>;
interface Sample { t: number; up: number; down: number; sessions: number }
interface State { health: Row; backends: Row[]; grants: Row[]; grants_total: number; sessions: Row[]; sessions_total: number; traffic: Sample | null; rendezvous: Row | null }

/** The stream carries the newest 500 rows; say so when there are more. */
const More = (props: { shown: number; total: number; what: string }) =>
  props.total > props.shown ? <p class="muted">Showing the newest {props.shown} of {props.total} {props.what}; the API and the dk commands list all.</p> : null;

/** A form field's text, trimmed ('' for a missing field). */
const field = (f: FormData, k: string): string => {
  const v = f.get(k);
  return typeof v === 'string' ? v.trim() : '';
};

const VIEWS = ['overview', 'backends', 'grants', 'sessions', 'links', 'audit', 'users', 'peers'] as const;
type View = (typeof VIEWS)[number];
const viewOf = (): View => {
  const v = location.hash.replace(/^#\/?/, '') as View;
  return VIEWS.includes(v) ? v : 'overview';
};

function Login(props: { onIn: (me: Me) => void }) {
  const [mode, setMode] = useState<'token' | 'totp'>('token');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const body = mode === 'token' ? { token: field(f, 'token') } : { user: field(f, 'user'), code: field(f, 'code') };
    setBusy(true);
    setErr('');
    try {
      props.onIn(await api<Me>('POST', '/api/v1/session', body));
    } catch (x) {
      setErr(x instanceof ApiFailure && x.status === 401 ? 'That token or code was not accepted.' : (x as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <h1>DoorKeeper</h1>
      <form onSubmit={(e) => void submit(e)} aria-describedby={err ? 'login-error' : undefined}>
        <fieldset class="modes">
          <legend>Sign in with</legend>
          <label><input type="radio" name="mode" checked={mode === 'token'} onChange={() => setMode('token')} /> API token</label>
          <label><input type="radio" name="mode" checked={mode === 'totp'} onChange={() => setMode('totp')} /> Authenticator code</label>
        </fieldset>
        {mode === 'token' ? (
          <p><label for="token">API token</label><input id="token" name="token" type="password" autocomplete="current-password" required /></p>
        ) : (
          <>
            <p><label for="user">User</label><input id="user" name="user" autocomplete="username" required /></p>
            <p><label for="code">6-digit code</label><input id="code" name="code" inputMode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code" required /></p>
          </>
        )}
        {err && <p id="login-error" class="error" role="alert">{err}</p>}
        <button type="submit" disabled={busy}>Sign in</button>
      </form>
    </main>
  );
}

function Table(props: { caption: string; cols: string[]; rows: preact.ComponentChildren[][]; empty: string }) {
  if (props.rows.length === 0) return <p class="empty">{props.empty}</p>;
  return (
    <div class="scroll" tabIndex={0} role="region" aria-label={props.caption}>
      <table>
        <caption class="sr-only">{props.caption}</caption>
        <thead><tr>{props.cols.map((c) => <th scope="col" key={c}>{c}</th>)}</tr></thead>
        <tbody>{props.rows.map((r, i) => <tr key={i}>{r.map((c, j) => <td key={j} data-label={props.cols[j]}>{c}</td>)}</tr>)}</tbody>
      </table>
    </div>
  );
}

function Overview(props: { state: State; series: Sample[] }) {
  const h = props.state.health;
  const s = props.series;
  const times = s.map((x) => x.t);
  return (
    <section aria-labelledby="h-overview">
      <h2 id="h-overview">Overview</h2>
      <ul class="stats">
        <li><strong>{h.agents_online}</strong> agents online</li>
        <li><strong>{h.grants}</strong> grants</li>
        <li><strong>{h.sessions}</strong> live sessions</li>
        {props.state.rendezvous && <li><strong>{props.state.rendezvous.peers_online}</strong> RustDesk peers online</li>}
      </ul>
      <Chart title="Throughput" times={times} format={(n) => `${bytes(n)}/s`}
        lines={[{ label: 'up', values: s.map((x) => x.up), cls: 'up' }, { label: 'down', values: s.map((x) => x.down), cls: 'down' }]} />
      <Chart title="Live sessions" times={times} format={(n) => String(n)} lines={[{ label: 'sessions', values: s.map((x) => x.sessions), cls: 'sess' }]} />
    </section>
  );
}

function Backends(props: { state: State }) {
  return (
    <section aria-labelledby="h-backends">
      <h2 id="h-backends">Backends</h2>
      <Table caption="Backends" cols={['Name', 'State', 'Agent', 'RTT', 'Link', 'Resumes', 'Sessions', 'Allowlist', 'Since']} empty="No backends you may use."
        rows={props.state.backends.map((b) => [
          <strong>{b.name}</strong>,
          <span class={b.online ? 'ok' : 'off'}>{b.online ? 'online' : 'offline'}</span>,
          b.agent_version ?? '—',
          b.rtt_ms === null ? '—' : `${b.rtt_ms} ms`,
          b.encrypted === null ? '—' : b.encrypted ? 'encrypted' : 'plain',
          b.online ? b.link_resumes : '—',
          b.sessions,
          b.allowlist ? b.allowlist.join(' ') : '—',
          ago(b.since),
        ])} />
    </section>
  );
}

function Grants(props: { state: State; act: (f: () => Promise<unknown>, ok: string) => Promise<void> }) {
  const online = props.state.backends;
  const submit = async (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const host = field(f, 'host');
    await props.act(() => api('POST', '/api/v1/access', { backend: field(f, 'backend'), port: Number(f.get('port')), ...(host ? { host } : {}) }), 'Grant made for this browser\'s address.');
  };
  return (
    <section aria-labelledby="h-grants">
      <h2 id="h-grants">Grants</h2>
      <form class="inline" onSubmit={(e) => void submit(e)} aria-label="Request access">
        <label>Backend <select name="backend" required>{online.map((b) => <option key={b.name}>{b.name}</option>)}</select></label>
        <label>Port <input name="port" type="number" min="1" max="65535" required size={6} /></label>
        <label>Host <input name="host" placeholder="127.0.0.1" size={14} /></label>
        <button type="submit">Request access</button>
      </form>
      <More shown={props.state.grants.length} total={props.state.grants_total} what="grants" />
      <Table caption="Grants" cols={['User', 'From', 'Access port', 'Target', 'Sessions', 'Idle close in', 'Ends in', '']} empty="No grants in force."
        rows={props.state.grants.map((g) => [
          g.user, g.client_ip, <strong>{g.access_port}</strong>, `${g.backend} ${g.host}:${g.port}`, g.active_sessions,
          until(g.start_before), until(g.expires_at),
          <button class="danger" aria-label={`Revoke grant ${g.grant_id} (${g.backend} ${g.host}:${g.port} for ${g.client_ip})`}
            onClick={() => void props.act(() => api('DELETE', `/api/v1/grants/${encodeURIComponent(g.grant_id)}`), 'Grant revoked.')}>Revoke</button>,
        ])} />
    </section>
  );
}

function Sessions(props: { state: State; act: (f: () => Promise<unknown>, ok: string) => Promise<void> }) {
  return (
    <section aria-labelledby="h-sessions">
      <h2 id="h-sessions">Live sessions</h2>
      <More shown={props.state.sessions.length} total={props.state.sessions_total} what="sessions" />
      <Table caption="Live sessions" cols={['User', 'Client', 'Target', 'Kind', 'Up', 'Down', 'Started', '']} empty="No live sessions."
        rows={props.state.sessions.map((s) => [
          s.user ?? '—', s.client, `${s.backend} ${s.target}`, s.kind,
          <span class="num" data-session-up={s.id}>{bytes(s.bytes_up)}</span>, <span class="num" data-session-down={s.id}>{bytes(s.bytes_down)}</span>, ago(s.started_at),
          <button class="danger" aria-label={`Kill session ${s.id}`} onClick={() => void props.act(() => api('DELETE', `/api/v1/sessions/${encodeURIComponent(s.id)}`), 'Session killed.')}>Kill</button>,
        ])} />
    </section>
  );
}

/** dk connect clients and their path (docs/p2p.md §9.5), and for an admin the agent links; read every 2 s. */
function Links(props: { admin: boolean }) {
  const [links, setLinks] = useState<{ p2p: string; agents: Row[]; clients: Row[] } | null>(null);
  const [err, setErr] = useState('');
  useEffect(() => {
    const load = () => api<{ p2p: string; agents: Row[]; clients: Row[] }>('GET', '/api/v1/links').then((l) => { setErr(''); setLinks(l); }, (x: Error) => setErr(x.message));
    void load();
    const t = setInterval(() => void load(), 2000);
    return () => clearInterval(t);
  }, []);
  const ms = (v: unknown) => (typeof v === 'number' ? `${Math.round(v)} ms` : '—');
  return (
    <section aria-labelledby="h-links">
      <h2 id="h-links">Links</h2>
      {err && <p class="error" role="alert">{err}</p>}
      {links && <p class="muted">dk connect sessions run end to end with the agent: relayed through this gateway, or direct when the NATs allow (gateway setting p2p: {links.p2p}).</p>}
      <h3>dk connect clients</h3>
      <Table caption="dk connect clients" cols={['User', 'Backend', 'Target', 'Path', 'RTT', 'Punches', 'Since', 'Last decision']} empty="No dk connect clients."
        rows={(links?.clients ?? []).map((c) => [
          c.user, c.backend, c.target, <strong class={c.path === 'direct' ? 'ok' : undefined} data-path={c.id}>{c.path}</strong>, ms(c.rtt_ms),
          `${c.punches.direct} direct, ${c.punches.failed} failed`, ago(c.since), <span class="why">{c.changes.at(-1)?.reason ?? '—'}</span>,
        ])} />
      {props.admin && <>
        <h3>Agent links</h3>
        <Table caption="Agent links" cols={['Backend', 'Remote', 'RTT', 'Resumes', 'End to end', 'Since']} empty="No agents online."
          rows={(links?.agents ?? []).map((a) => [<strong>{a.backend}</strong>, a.remote, ms(a.rtt_ms), a.resumes, a.e2e ? 'yes' : 'no', ago(a.since)])} />
      </>}
    </section>
  );
}

function Audit() {
  const [rows, setRows] = useState<Row[] | null>(null);
  const [err, setErr] = useState('');
  const load = async (q: URLSearchParams) => {
    try {
      setErr('');
      setRows((await api<{ events: Row[] }>('GET', `/api/v1/audit?${q.toString()}`)).events);
    } catch (x) {
      setErr((x as Error).message);
    }
  };
  useEffect(() => { void load(new URLSearchParams({ limit: '200' })); }, []);
  const submit = (e: Event) => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    const q = new URLSearchParams({ limit: '200' });
    for (const k of ['user', 'backend', 'since', 'until']) {
      const v = field(f, k);
      if (v) q.set(k, k === 'since' || k === 'until' ? new Date(v).toISOString() : v);
    }
    void load(q);
  };
  return (
    <section aria-labelledby="h-audit">
      <h2 id="h-audit">Audit log</h2>
      <form class="inline" onSubmit={submit} aria-label="Filter the audit log">
        <label>User <input name="user" size={10} /></label>
        <label>Backend <input name="backend" size={10} /></label>
        <label>From <input name="since" type="datetime-local" /></label>
        <label>To <input name="until" type="datetime-local" /></label>
        <button type="submit">Filter</button>
      </form>
      {err && <p class="error" role="alert">{err}</p>}
      {rows && <Table caption="Audit events" cols={['Time', 'Event', 'User', 'From', 'Backend', 'Target', 'Up', 'Down', 'Detail']} empty="No events match."
        rows={rows.map((e) => [time(e.ts), e.event, e.user ?? '—', e.clientIp ?? '—', e.backend ?? '—', e.target ?? '—',
          e.bytesUp === null ? '' : bytes(e.bytesUp), e.bytesDown === null ? '' : bytes(e.bytesDown), e.detail ?? ''])} />}
    </section>
  );
}

function Users(props: { act: (f: () => Promise<unknown>, ok: string) => Promise<void> }) {
  const [users, setUsers] = useState<Row[]>([]);
  const [made, setMade] = useState<{ name: string; token: string; totp: string | null } | null>(null);
  const reload = async () => setUsers((await api<{ users: Row[] }>('GET', '/api/v1/users')).users);
  useEffect(() => { void reload(); }, []);
  const submit = async (e: Event) => {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const f = new FormData(form);
    const list = (k: string): string[] => field(f, k).split(',').map((x) => x.trim()).filter(Boolean);
    const body = {
      name: field(f, 'name'), admin: f.get('admin') === 'on', totp: f.get('totp') === 'on',
      backends: list('backends'), hosts: list('hosts').length ? list('hosts') : ['*'], ports: field(f, 'ports') || '*',
    };
    await props.act(async () => {
      const r = await api<{ user: Row; token: string; totp_uri: string | null }>('POST', '/api/v1/users', body);
      setMade({ name: body.name, token: r.token, totp: r.totp_uri });
      form.reset();
      await reload();
    }, `User ${body.name} added.`);
  };
  return (
    <section aria-labelledby="h-users">
      <h2 id="h-users">Users</h2>
      <Table caption="Users" cols={['Name', 'Admin', 'Backends', 'Hosts', 'Ports', 'TOTP', '']} empty="No users."
        rows={users.map((u) => [<strong>{u.name}</strong>, u.admin ? 'yes' : 'no', (u.permissions?.backends ?? []).join(', ') || '—',
          (u.permissions?.hosts ?? []).join(', '), u.permissions?.ports ?? '', u.hasTotp ? 'yes' : 'no',
          <button class="danger" aria-label={`Remove user ${u.name}`} onClick={() => void props.act(async () => { await api('DELETE', `/api/v1/users/${encodeURIComponent(u.name)}`); await reload(); }, `User ${u.name} removed.`)}>Remove</button>])} />
      <h3>Add a user</h3>
      <form class="stack" onSubmit={(e) => void submit(e)}>
        <p><label for="u-name">Name</label><input id="u-name" name="name" required pattern="[A-Za-z0-9][A-Za-z0-9._\-]{0,63}" /></p>
        <p><label for="u-backends">Backends (comma-separated)</label><input id="u-backends" name="backends" placeholder="home, office" /></p>
        <p><label for="u-hosts">Hosts (CIDRs, or *)</label><input id="u-hosts" name="hosts" placeholder="*" /></p>
        <p><label for="u-ports">Ports</label><input id="u-ports" name="ports" placeholder="22,3389 or *" /></p>
        <p class="check"><label><input type="checkbox" name="admin" /> Administrator</label></p>
        <p class="check"><label><input type="checkbox" name="totp" /> Authenticator app (TOTP)</label></p>
        <button type="submit">Add user</button>
      </form>
      {made && (
        <div class="made" role="status">
          <h3>{made.name}: shown once</h3>
          <p>API token: <code class="token">{made.token}</code></p>
          {made.totp && (
            <>
              <p>Scan this with an authenticator app, then sign in with <em>{made.name}</em> and its 6-digit code.</p>
              <div class="qr" role="img" aria-label={`TOTP enrolment QR code for ${made.name}`} dangerouslySetInnerHTML={{ __html: renderSVG(made.totp, { border: 2 }) }} />
              <details><summary>Enter the key by hand</summary><code class="token">{made.totp}</code></details>
            </>
          )}
          <button onClick={() => setMade(null)}>Done</button>
        </div>
      )}
    </section>
  );
}

function Peers(props: { state: State }) {
  const [peers, setPeers] = useState<Row[] | null>(null);
  const online = props.state.rendezvous?.peers_online;
  useEffect(() => { void api<{ peers: Row[] }>('GET', '/api/v1/rendezvous/peers?limit=200').then((r) => setPeers(r.peers), () => setPeers([])); }, [online]);
  return (
    <section aria-labelledby="h-peers">
      <h2 id="h-peers">RustDesk peers</h2>
      {props.state.rendezvous && <p>Key: <code class="token">{props.state.rendezvous.key}</code></p>}
      {peers && <Table caption="RustDesk peers" cols={['ID', 'State', 'Address', 'NAT', 'Transport', 'Registered']} empty="No peers yet."
        rows={peers.map((p) => [<strong>{p.id}</strong>, <span class={p.online ? 'ok' : 'off'}>{p.online ? 'online' : 'offline'}</span>, p.ip ?? '—', p.nat_type ?? '—', p.transport ?? '—', ago(p.last_registration)])} />}
    </section>
  );
}

function Dashboard(props: { me: Me; onOut: () => void }) {
  const [view, setView] = useState<View>(viewOf());
  const [state, setState] = useState<State | null>(null);
  const [series, setSeries] = useState<Sample[]>([]);
  const [note, setNote] = useState<{ text: string; bad: boolean } | null>(null);
  const [live, setLive] = useState(false);

  useEffect(() => {
    const on = () => {
      setView(viewOf());
      setNote(null);
    };
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  useEffect(() => {
    void api<{ samples: Sample[] }>('GET', '/api/v1/traffic').then((r) => setSeries(r.samples), () => undefined);
    const es = new EventSource('/api/v1/events');
    es.addEventListener('state', (e) => {
      const s = JSON.parse((e as MessageEvent<string>).data) as State;
      setState(s);
      setLive(true);
      if (s.traffic) {
        const t = s.traffic;
        setSeries((old) => (old.at(-1)?.t === t.t ? old : [...old.filter((x) => x.t > t.t - 3_600_000), t]));
      }
    });
    // The browser reconnects by itself after a network error, but not after an error answer:
    // then the session is checked, and an ended one shows the sign-in form.
    es.onerror = () => {
      setLive(false);
      if (es.readyState === EventSource.CLOSED) void api('GET', '/api/v1/session').then(() => setNote({ text: 'Live updates stopped; reload the page.', bad: true }), () => props.onOut());
    };
    return () => es.close();
  }, []);

  const act = async (f: () => Promise<unknown>, ok: string) => {
    try {
      await f();
      setNote({ text: ok, bad: false });
    } catch (x) {
      if (x instanceof ApiFailure && x.status === 401) props.onOut();
      setNote({ text: (x as Error).message, bad: true });
    }
  };
  const signOut = async () => {
    await api('DELETE', '/api/v1/session').catch(() => undefined);
    props.onOut();
  };
  const views = VIEWS.filter((v) => (v !== 'audit' && v !== 'users' && v !== 'peers') || (props.me.admin && (v !== 'peers' || props.me.rendezvous)));
  return (
    <>
      <header>
        <a class="skip" href="#main">Skip to content</a>
        <span class="brand">DoorKeeper</span>
        <nav aria-label="Views">
          {views.map((v) => <a key={v} href={`#/${v}`} aria-current={v === view ? 'page' : undefined}>{v[0]!.toUpperCase() + v.slice(1)}</a>)}
        </nav>
        <span class="who"><span class={live ? 'dot ok' : 'dot off'} role="img" aria-label={live ? 'live' : 'not live'} /> {props.me.user}
          <button onClick={() => void signOut()}>Sign out</button></span>
      </header>
      <main id="main" tabIndex={-1}>
        {note && <p class={note.bad ? 'note error' : 'note'} role={note.bad ? 'alert' : 'status'}>{note.text} <button class="link" onClick={() => setNote(null)} aria-label="Dismiss">×</button></p>}
        {!state ? <p>Loading…</p>
          : view === 'backends' ? <Backends state={state} />
          : view === 'grants' ? <Grants state={state} act={act} />
          : view === 'sessions' ? <Sessions state={state} act={act} />
          : view === 'links' ? <Links admin={props.me.admin} />
          : view === 'audit' && props.me.admin ? <Audit />
          : view === 'users' && props.me.admin ? <Users act={act} />
          : view === 'peers' && props.me.rendezvous ? <Peers state={state} />
          : <Overview state={state} series={series} />}
      </main>
    </>
  );
}

function App() {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  useEffect(() => {
    void api<Me>('GET', '/api/v1/session').then((m) => { setCsrf(m); setMe(m); }, () => setMe(null));
  }, []);
  if (me === undefined) return <p>Loading…</p>;
  if (me === null) return <Login onIn={(m) => { setCsrf(m); setMe(m); }} />;
  return <Dashboard me={me} onOut={() => { setCsrf(null); setMe(null); }} />;
}

render(<App />, document.getElementById('app')!);
