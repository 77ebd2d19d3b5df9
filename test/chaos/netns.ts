export async function runNetns(_o: { log: (s: string) => void }): Promise<{ ok: boolean }> {
  return { ok: false };
}
