// A heatmap as a small standalone SVG: rows × columns of cells coloured from red (0) to green (1),
// each labelled with its percentage.

export interface Heatmap {
  title: string;
  columns: string[];
  rows: string[];
  /** Value in [0, 1] of cell (row, column), or null when it was not measured. */
  value: (row: number, column: number) => number | null;
}

function colour(v: number): string {
  // red (0) → yellow (0.5) → green (1)
  const r = v < 0.5 ? 220 : Math.round(220 - (v - 0.5) * 2 * 170);
  const g = v < 0.5 ? Math.round(60 + v * 2 * 150) : 190;
  return `rgb(${r},${g},70)`;
}

export function heatmapSvg(h: Heatmap): string {
  const cw = 72;
  const ch = 30;
  const left = 90;
  const top = 50;
  const width = left + cw * h.columns.length + 10;
  const height = top + ch * h.rows.length + 30;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">${h.title}</text>`,
  ];
  h.columns.forEach((c, k) => out.push(`<text x="${left + k * cw + cw / 2}" y="${top - 8}" text-anchor="middle">${c}</text>`));
  h.rows.forEach((r, i) => {
    out.push(`<text x="${left - 8}" y="${top + i * ch + ch / 2 + 4}" text-anchor="end">${r}</text>`);
    h.columns.forEach((_, k) => {
      const v = h.value(i, k);
      const x = left + k * cw;
      const y = top + i * ch;
      out.push(`<rect x="${x}" y="${y}" width="${cw - 2}" height="${ch - 2}" fill="${v === null ? '#ddd' : colour(v)}"/>`);
      out.push(`<text x="${x + cw / 2 - 1}" y="${y + ch / 2 + 4}" text-anchor="middle">${v === null ? '–' : `${Math.round(v * 100)}%`}</text>`);
    });
  });
  out.push(`<text x="${left}" y="${height - 8}" fill="#555">tokens →   (rows: needle depth, 0 = start of the document)</text>`, '</svg>');
  return `${out.join('\n')}\n`;
}
