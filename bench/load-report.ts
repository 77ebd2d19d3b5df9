/** Draws a load run as one self-contained HTML page with inline SVG line charts (no external assets). */

export interface Series {
  name: string;
  points: Array<[number, number]>;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v: number): number {
  if (!Number.isFinite(v) || v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/** One line chart: x is seconds since the start, y in `unit`. */
export function lineChart(title: string, unit: string, series: Series[], opts: { logY?: boolean } = {}): string {
  const W = 760;
  const H = 260;
  const L = 64;
  const R = 150;
  const T = 28;
  const B = 34;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  const xMax = Math.max(1, ...xs);
  const yMax = niceMax(Math.max(0, ...ys));
  const yMin = opts.logY ? Math.max(0.01, Math.min(...ys.filter((y) => y > 0), yMax)) : 0;
  const fy = (y: number) => {
    if (opts.logY) {
      const lo = Math.log10(yMin);
      const hi = Math.log10(yMax);
      return T + (H - T - B) * (1 - (Math.log10(Math.max(y, yMin)) - lo) / Math.max(1e-9, hi - lo));
    }
    return T + (H - T - B) * (1 - y / yMax);
  };
  const fx = (x: number) => L + (W - L - R) * (x / xMax);
  const parts: string[] = [];
  parts.push(`<text x="${L}" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const y = opts.logY ? 10 ** (Math.log10(yMin) + ((Math.log10(yMax) - Math.log10(yMin)) * i) / 4) : (yMax * i) / 4;
    const py = fy(y);
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${py}" y2="${py}" stroke="#ddd"/>`);
    parts.push(`<text x="${L - 6}" y="${py + 4}" font-size="11" text-anchor="end">${y >= 100 ? y.toFixed(0) : y.toPrecision(2)}</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const x = (xMax * i) / 5;
    parts.push(`<text x="${fx(x)}" y="${H - B + 16}" font-size="11" text-anchor="middle">${x.toFixed(0)} s</text>`);
  }
  parts.push(`<text x="14" y="${(T + H - B) / 2}" font-size="11" transform="rotate(-90 14 ${(T + H - B) / 2})" text-anchor="middle">${esc(unit)}</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const d = s.points
      .filter((p) => Number.isFinite(p[1]))
      .map((p, k) => `${k === 0 ? 'M' : 'L'}${fx(p[0]).toFixed(1)},${fy(p[1]).toFixed(1)}`)
      .join(' ');
    if (d) parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="1.5"/>`);
    parts.push(`<rect x="${W - R + 10}" y="${T + i * 16}" width="10" height="10" fill="${c}"/>`);
    parts.push(`<text x="${W - R + 24}" y="${T + i * 16 + 9}" font-size="11">${esc(s.name)}</text>`);
  });
  parts.push(`<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/><line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">${parts.join('')}</svg>`;
}

export function htmlPage(title: string, summary: Array<[string, string]>, charts: string[], json: unknown): string {
  const rows = summary.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:sans-serif;margin:24px;max-width:820px}table{border-collapse:collapse;margin-bottom:16px}th,td{border:1px solid #ccc;padding:4px 10px;text-align:left}th{background:#f4f4f4}svg{display:block;margin:18px 0}details pre{font-size:11px;max-height:300px;overflow:auto}</style>
</head><body>
<h1>${esc(title)}</h1>
<table>${rows}</table>
${charts.join('\n')}
<details><summary>raw results (JSON)</summary><pre>${esc(JSON.stringify(json, null, 1).slice(0, 200_000))}</pre></details>
</body></html>
`;
}
