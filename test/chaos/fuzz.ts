export async function runFuzz(_o: { count: number; seed: number; log: (s: string) => void }): Promise<{ ok: boolean }> {
  return { ok: false };
}
