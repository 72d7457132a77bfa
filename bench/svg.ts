import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A small dependency-free SVG: each queued request's real wait against the wait it was told,
 * with the diagonal (perfect estimate) and the SPEC's tolerance band, max(2 s, 20 %).
 */
export function writeSvg(name: string, points: readonly { real: number; estimate: number }[]): string {
  const W = 640;
  const H = 420;
  const pad = 50;
  const max = Math.max(5, ...points.flatMap((p) => [p.real, p.estimate])) * 1.1;
  const x = (v: number) => pad + (v / max) * (W - 2 * pad);
  const y = (v: number) => H - pad - (v / max) * (H - 2 * pad);
  const band = (f: (v: number) => number) =>
    Array.from({ length: 41 }, (_, i) => (i / 40) * max)
      .map((v) => `${x(v).toFixed(1)},${y(Math.max(0, f(v))).toFixed(1)}`)
      .join(' ');
  const ticks = Array.from({ length: 6 }, (_, i) => (i / 5) * max);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12" role="img">
<title>Queue wait: real against estimated, ${points.length} queued requests</title>
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">Queue wait: real vs estimated (${points.length} queued requests)</text>
<polyline fill="none" stroke="#c8d6f5" stroke-width="1" points="${band((v) => v + Math.max(2, 0.2 * v))}"/>
<polyline fill="none" stroke="#c8d6f5" stroke-width="1" points="${band((v) => v - Math.max(2, 0.2 * v))}"/>
<line x1="${x(0)}" y1="${y(0)}" x2="${x(max)}" y2="${y(max)}" stroke="#888" stroke-dasharray="4 4"/>
<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="black"/>
<line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="black"/>
${ticks.map((t) => `<text x="${x(t)}" y="${H - pad + 16}" text-anchor="middle">${t.toFixed(0)}</text><text x="${pad - 8}" y="${y(t) + 4}" text-anchor="end">${t.toFixed(0)}</text>`).join('\n')}
<text x="${W / 2}" y="${H - 12}" text-anchor="middle">estimated wait told to the client (s)</text>
<text x="14" y="${H / 2}" text-anchor="middle" transform="rotate(-90 14 ${H / 2})">real wait (s)</text>
${points.map((p) => `<circle cx="${x(p.estimate).toFixed(1)}" cy="${y(p.real).toFixed(1)}" r="3" fill="#2857d6" fill-opacity="0.7"/>`).join('\n')}
</svg>
`;
  return save(name, svg);
}

/** Latency over the run: one dot per admitted message (x: when it was sent, y: time to complete). */
export function writeLatencySvg(
  name: string,
  points: readonly { atS: number; latencyMs: number; queued: boolean }[],
): string {
  const W = 640;
  const H = 420;
  const pad = 56;
  const maxX = Math.max(1, ...points.map((p) => p.atS)) * 1.05;
  const maxY = Math.max(10, ...points.map((p) => p.latencyMs)) * 1.1;
  const x = (v: number) => pad + (v / maxX) * (W - 2 * pad);
  const y = (v: number) => H - pad - (v / maxY) * (H - 2 * pad);
  const ticks = Array.from({ length: 6 }, (_, i) => i / 5);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12" role="img">
<title>Latency to message_complete over the load run</title>
<rect width="100%" height="100%" fill="white"/>
<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">Time to message_complete over the run (${points.length} messages)</text>
<line x1="${pad}" y1="${H - pad}" x2="${W - pad}" y2="${H - pad}" stroke="black"/>
<line x1="${pad}" y1="${pad}" x2="${pad}" y2="${H - pad}" stroke="black"/>
${ticks.map((t) => `<text x="${x(t * maxX)}" y="${H - pad + 16}" text-anchor="middle">${(t * maxX).toFixed(0)}</text><text x="${pad - 6}" y="${y(t * maxY) + 4}" text-anchor="end">${(t * maxY).toFixed(0)}</text>`).join('\n')}
<text x="${W / 2}" y="${H - 12}" text-anchor="middle">sent at (s since start); orange: waited in the queue</text>
<text x="14" y="${H / 2}" text-anchor="middle" transform="rotate(-90 14 ${H / 2})">latency (ms)</text>
${points.map((p) => `<circle cx="${x(p.atS).toFixed(1)}" cy="${y(p.latencyMs).toFixed(1)}" r="2.5" fill="${p.queued ? '#d97706' : '#2857d6'}" fill-opacity="0.6"/>`).join('\n')}
</svg>
`;
  return save(name, svg);
}

function save(name: string, svg: string): string {
  const dir = join(process.cwd(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  writeFileSync(file, svg);
  return file;
}
