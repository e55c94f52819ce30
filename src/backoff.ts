/**
 * Exponential backoff with jitter: the wait before retry `n` (0-based), between half and all of
 * min(maxMs, initialMs·2ⁿ). The jitter keeps a county's worth of gateways from reconnecting in step
 * after the center's broker restarts.
 */
export function backoffDelay(
  n: number,
  backoff: { initialMs: number; maxMs: number },
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(n, 30));
  return Math.round(ceiling * (0.5 + 0.5 * random()));
}
