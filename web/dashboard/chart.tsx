/** A line chart of the last hour as inline SVG: no library, no script in the SVG. */
export interface Line { label: string; values: number[]; cls: string }

export function Chart(props: { title: string; times: number[]; lines: Line[]; format: (n: number) => string }) {
  const { times, lines } = props;
  const W = 600;
  const H = 140;
  const now = Date.now();
  // The last hour, or less while the gateway has been up for less (at least a minute is shown).
  const t0 = Math.max(now - 3_600_000, Math.min((times[0] ?? now) - 5000, now - 60_000));
  const span = Math.max(1, now - t0);
  const max = Math.max(1, ...lines.flatMap((l) => l.values));
  const x = (t: number): number => Math.min(W - 4, ((t - t0) / span) * (W - 4));
  const y = (v: number): number => H - 4 - (v / max) * (H - 12);
  const summary = lines.map((l) => `${l.label} now ${props.format(l.values.at(-1) ?? 0)}, peak ${props.format(Math.max(0, ...l.values))}`).join('; ');
  return (
    <figure class="chart">
      <figcaption>{props.title} <span class="muted">(last {Math.round(span / 60_000)} min, peak {props.format(max)})</span></figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={`${props.title}: ${summary}`}>
        <line x1="0" y1={H - 4} x2={W} y2={H - 4} class="axis" />
        {lines.map((l) => (
          <g key={l.label} class={l.cls}>
            <polyline fill="none" points={l.values.map((v, i) => `${x(times[i] ?? now).toFixed(1)},${y(v).toFixed(1)}`).join(' ')} />
            {/* The newest sample as a dot: a zero-length line with a round cap is not stretched by the viewBox. */}
            {l.values.length > 0 && <line class="dot" x1={x(times.at(-1) ?? now)} y1={y(l.values.at(-1) ?? 0)} x2={x(times.at(-1) ?? now)} y2={y(l.values.at(-1) ?? 0)} />}
          </g>
        ))}
      </svg>
      <p class="legend">{lines.map((l) => <span key={l.label} class={`key ${l.cls}`}>{l.label}: {props.format(l.values.at(-1) ?? 0)}</span>)}</p>
    </figure>
  );
}
