/** A line chart of the last hour as inline SVG: no library, no script in the SVG. */
export interface Line { label: string; values: number[]; cls: string }

export function Chart(props: { title: string; times: number[]; lines: Line[]; format: (n: number) => string }) {
  const { times, lines } = props;
  const W = 600;
  const H = 140;
  const now = Date.now();
  const t0 = now - 3_600_000;
  const max = Math.max(1, ...lines.flatMap((l) => l.values));
  const x = (t: number): number => ((t - t0) / 3_600_000) * W;
  const y = (v: number): number => H - 4 - (v / max) * (H - 12);
  const summary = lines.map((l) => `${l.label} now ${props.format(l.values.at(-1) ?? 0)}, peak ${props.format(Math.max(0, ...l.values))}`).join('; ');
  return (
    <figure class="chart">
      <figcaption>{props.title} <span class="muted">(last hour, peak {props.format(max)})</span></figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label={`${props.title}: ${summary}`}>
        <line x1="0" y1={H - 4} x2={W} y2={H - 4} class="axis" />
        {lines.map((l) => (
          <g key={l.label} class={l.cls}>
            <polyline fill="none" points={l.values.map((v, i) => `${x(times[i] ?? now).toFixed(1)},${y(v).toFixed(1)}`).join(' ')} />
            {l.values.length > 0 && <circle cx={x(times.at(-1) ?? now)} cy={y(l.values.at(-1) ?? 0)} r="3" />}
          </g>
        ))}
      </svg>
      <p class="legend">{lines.map((l) => <span key={l.label} class={`key ${l.cls}`}>{l.label}: {props.format(l.values.at(-1) ?? 0)}</span>)}</p>
    </figure>
  );
}
