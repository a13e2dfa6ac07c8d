// How long the rest of a read will take, from a cost model fitted as the read goes.
//
// A token read costs  a + b·R  seconds, R = the KV rows held while it is read: select votes over
// every stored row and full attends to all of them, so their tokens get dearer as the document
// grows (on the 261-page PDF: ~10K tok/s at the start, ~2K at the end); beacon and stream hold few
// rows, so theirs stay about the same. "Tokens left / average speed so far" ignores that and was ~3×
// too low on long select reads.
//
// Each step between two observations is one sample: n tokens in Δt seconds while the rows went
// from R0 to R1, i.e. Δt/n = a + b·(R0 + R1)/2. a and b come from least squares over the samples
// (weighted by n: a long step is a surer sample). b is kept only as far as the samples show it
// (b − one standard error, never below 0), so noise on a flat curve does not become a slope that
// the extrapolation multiplies. The rows still to come grow as they did over the recent half of
// the read (1 per token for select and full, 1/ratio for beacon, 0 for a full stream window) up
// to the plan's most rows held.
//
// Time is whatever the caller says (seconds since the read began), so tests drive it with a
// synthetic clock.

interface Sample {
  /** Tokens read when the sample ended. */
  done: number;
  rows: number;
  seconds: number;
}

export class ReadEta {
  private readonly samples: Sample[] = [];

  /**
   * @param total tokens the read will have consumed at its end
   * @param maxRows the most KV rows the plan says the run holds (rows never grow past it)
   */
  constructor(
    private readonly total: number,
    private readonly maxRows = Infinity,
  ) {}

  /** After a step: tokens read so far, KV rows held now, seconds since the read began. */
  observe(done: number, rows: number, seconds: number): void {
    const last = this.samples.at(-1);
    if (last && done <= last.done) return;
    this.samples.push({ done, rows, seconds });
  }

  /** Seconds left until `total`: NaN until two steps are seen, 0 at the end. */
  remaining(): number {
    const now = this.samples.at(-1);
    if (!now) return NaN;
    const left = this.total - now.done;
    if (left <= 0) return 0;
    const fit = this.fit();
    if (!fit) return NaN;
    // Rows as they grow from here: R(x) = min(maxRows, R_now + growth·x) for x tokens more.
    const growth = this.rowGrowth();
    const r0 = Math.min(now.rows, this.maxRows);
    const untilCap = growth > 0 ? (this.maxRows - r0) / growth : Infinity;
    const ramp = Math.min(left, untilCap);
    const rowTokens = ramp * (r0 + (growth * ramp) / 2) + (left > ramp ? (left - ramp) * this.maxRows : 0);
    return fit.a * left + fit.b * rowTokens;
  }

  /** a (s/token) and b (s/token/row) from the samples; null with fewer than two steps. */
  private fit(): { a: number; b: number } | null {
    // The first step also pays for warming up (graphs built, buffers allocated): left out once
    // there are others.
    const from = this.samples.length > 3 ? 1 : 0;
    let sw = 0;
    let sx = 0;
    let sy = 0;
    let sxx = 0;
    let sxy = 0;
    let n = 0;
    const points: Array<{ w: number; x: number; y: number }> = [];
    for (let i = from; i < this.samples.length; i++) {
      const prev = i === 0 ? { done: 0, rows: 0, seconds: 0 } : this.samples[i - 1]!;
      const cur = this.samples[i]!;
      const tokens = cur.done - prev.done;
      const dt = cur.seconds - prev.seconds;
      if (tokens <= 0 || dt < 0) continue;
      const p = { w: tokens, x: (prev.rows + cur.rows) / 2, y: dt / tokens };
      points.push(p);
      sw += p.w;
      sx += p.w * p.x;
      sy += p.w * p.y;
      sxx += p.w * p.x * p.x;
      sxy += p.w * p.x * p.y;
      n++;
    }
    if (n < 2 || sw <= 0) return null;
    const mx = sx / sw;
    const my = sy / sw;
    const vx = sxx / sw - mx * mx;
    const flat = { a: my, b: 0 };
    if (vx <= 1e-9 * Math.max(1, mx * mx) || n < 3) return flat;
    const b = (sxy / sw - mx * my) / vx;
    // The slope's standard error from the residuals (weights normalised to the sample count).
    let rss = 0;
    for (const p of points) rss += p.w * (p.y - (my + b * (p.x - mx))) ** 2;
    const se = Math.sqrt((rss / sw) * (n / (n - 2)) / (vx * n));
    const kept = Math.max(0, b - se);
    if (kept === 0) return flat;
    const a = my - kept * mx;
    // A negative a would mean cheaper-than-free tokens at few rows: then the cost is all slope.
    if (a < 0) return { a: 0, b: sxy / sxx };
    return { a, b: kept };
  }

  /** KV rows added per token read, over the recent half of the read. */
  private rowGrowth(): number {
    const now = this.samples.at(-1)!;
    const half = now.done / 2;
    let back = this.samples[0]!;
    for (const s of this.samples) {
      if (s.done > half) break;
      back = s;
    }
    if (back === now) return now.done > 0 ? now.rows / now.done : 1;
    return Math.max(0, (now.rows - back.rows) / (now.done - back.done));
  }
}
