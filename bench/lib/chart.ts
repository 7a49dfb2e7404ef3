/**
 * Writes the benchmark's results as one SVG: a small-multiples grid, one panel per figure, one
 * bar per contender, the same colour for a contender in every panel, the value printed on the bar.
 */
export interface Panel {
  title: string;
  unit: string;
  /** True when a smaller value is better (said in the panel title). */
  lowerIsBetter?: boolean;
  values: (number | null)[];
}

const COLORS = ['#7f7f7f', '#bcbd22', '#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#d62728', '#17becf'];
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function fmt(v: number): string {
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  if (v >= 1) return v.toFixed(2);
  return v.toFixed(3);
}

export function chartSvg(title: string, subtitle: string, contenders: string[], panels: Panel[]): string {
  const cols = 3;
  const barH = 16;
  const gap = 5;
  const panelW = 330;
  const labelW = 0;
  const panelH = 34 + contenders.length * (barH + gap) + 8;
  const rows = Math.ceil(panels.length / cols);
  const legendH = 22 * Math.ceil(contenders.length / 3) + 10;
  const top = 58;
  const width = cols * panelW + 30;
  const height = top + legendH + rows * panelH + 10;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif">`);
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  out.push(`<text x="15" y="24" font-size="17" font-weight="bold">${esc(title)}</text>`);
  out.push(`<text x="15" y="44" font-size="11" fill="#555">${esc(subtitle)}</text>`);
  contenders.forEach((c, i) => {
    const x = 15 + (i % 3) * panelW;
    const y = top + Math.floor(i / 3) * 22;
    out.push(`<rect x="${x}" y="${y}" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${x + 18}" y="${y + 10}" font-size="12">${esc(c)}</text>`);
  });
  panels.forEach((p, k) => {
    const x0 = 15 + (k % cols) * panelW;
    const y0 = top + legendH + Math.floor(k / cols) * panelH;
    const max = Math.max(...p.values.map((v) => v ?? 0), 1e-9);
    const w = panelW - 30 - labelW;
    out.push(`<text x="${x0}" y="${y0 + 14}" font-size="12" font-weight="bold">${esc(p.title)}</text>`);
    out.push(`<text x="${x0}" y="${y0 + 27}" font-size="10" fill="#555">${esc(p.unit)}${p.lowerIsBetter ? ' — lower is better' : ' — higher is better'}</text>`);
    p.values.forEach((v, i) => {
      const y = y0 + 34 + i * (barH + gap);
      if (v === null) {
        out.push(`<text x="${x0 + labelW + 4}" y="${y + 12}" font-size="10" fill="#999">not measured</text>`);
        return;
      }
      const bw = Math.max(1, (v / max) * (w - 50));
      out.push(`<rect x="${x0 + labelW}" y="${y}" width="${bw.toFixed(1)}" height="${barH}" fill="${COLORS[i % COLORS.length]}"/>`);
      out.push(`<text x="${(x0 + labelW + bw + 4).toFixed(1)}" y="${y + 12}" font-size="10">${fmt(v)}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
