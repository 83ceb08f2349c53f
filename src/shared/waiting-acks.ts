/**
 * How many of Slack's requests are waiting for their acknowledgement, counted by the thread that answers
 * Slack in memory both threads share, so that bulk work (an import's preview and batches) steps aside
 * while one waits. Nice values order Roster's own threads, not the Postgres backend taking an import's
 * `COPY`, which competes with the acknowledgement for the same cores: pausing the import pauses it too.
 */
const cells = { current: new Int32Array(new SharedArrayBuffer(4)) };

/** The most a step aside waits, so that steady Slack traffic slows bulk work but never stops it. */
export const STEP_ASIDE_MAX_MS = 20;

/** The counter's memory, handed to the bulk jobs thread when it starts. */
export function waitingAcksBuffer(): SharedArrayBuffer {
  return cells.current.buffer as SharedArrayBuffer;
}

/** In the bulk jobs thread: count with the thread that answers Slack. */
export function shareWaitingAcks(buffer: SharedArrayBuffer): void {
  cells.current = new Int32Array(buffer);
}

/** A request now waits for its acknowledgement; the function returned says it no longer does (once). */
export function ackAwaited(): () => void {
  const c = cells.current;
  Atomics.add(c, 0, 1);
  Atomics.notify(c, 0);
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    Atomics.sub(c, 0, 1);
    Atomics.notify(c, 0);
  };
}

/** Requests waiting for their acknowledgement now. */
export function waitingAcks(): number {
  return Atomics.load(cells.current, 0);
}

/**
 * Lets the event loop run, then, while a Slack request waits for its acknowledgement, waits until none
 * does, for at most `maxMs`. Called by bulk work between short slices of itself.
 */
export async function stepAside(maxMs = STEP_ASIDE_MAX_MS): Promise<void> {
  await new Promise<void>((ok) => setImmediate(ok));
  const c = cells.current;
  const until = performance.now() + maxMs;
  for (let n = Atomics.load(c, 0); n > 0; n = Atomics.load(c, 0)) {
    const left = until - performance.now();
    if (left <= 0) return;
    const wait = Atomics.waitAsync(c, 0, n, left);
    if (!wait.async) continue;
    // A pending waitAsync does not keep the event loop alive; the timer does, until it is settled.
    const hold = setTimeout(() => {}, left);
    await wait.value;
    clearTimeout(hold);
  }
}
