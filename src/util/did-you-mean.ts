/**
 * The name someone most likely meant when they typed one that does not exist: the config's
 * "unknown key mesh.provder (did you mean mesh.provider?)" and its like.
 */

/**
 * Edits (insert, delete, replace, swap two neighbours) from `a` to `b`, or `max + 1` when it is
 * more than `max`.
 * @example
 * editDistance('tgas', 'tags', 2); // 1
 */
export function editDistance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev2: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, (prev2[j - 2] as number) + 1);
      row.push(d);
    }
    prev2 = prev;
    prev = row;
  }
  return Math.min(prev[b.length] as number, max + 1);
}

/**
 * The candidate closest to `word` within a distance that grows with its length (1 up to 4
 * characters, 2 up to 10, 3 beyond), or `undefined`.
 * @example
 * didYouMean('lable', ['type', 'url', 'label', 'tags']); // 'label'
 */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  if (word.length > 100) return undefined;
  const max = word.length <= 4 ? 1 : word.length <= 10 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = max + 1;
  for (const c of candidates) {
    const d = editDistance(word, c, max);
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}
