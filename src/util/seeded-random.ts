// mulberry32: a small, well-known seeded generator of uniform numbers in [0, 1). The same seed
// gives the same sequence on every platform, so sample batches, injected faults and kill moments
// in tests are random but repeatable.

export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let value = state;
    value = Math.imul(value ^ (value >>> 15), value | 1);
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61);
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296;
  };
}
