// mulberry32: a tiny, fast 32-bit PRNG. Bit-identical to `Mulberry32` in
// models/recipes/needle/language.py, so the same seed gives the same document in both languages;
// also the generator of tools/random-model.ts's weights.

export type Rng = () => number;

/** Uniform floats in [0, 1), each a multiple of 2^-32. */
export function mulberry32(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Uniform integer in [0, n). */
export function randInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}
