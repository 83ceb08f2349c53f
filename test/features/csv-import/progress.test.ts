import { progressBar, progressMessage } from '../../../src/features/csv-import/slack/blocks.ts';
import { ProgressReporter } from '../../../src/features/csv-import/slack/progress.ts';

describe('the import progress message', () => {
  it('draws a text progress bar', () => {
    expect(progressBar(0, 200)).toBe('░░░░░░░░░░░░░░░░░░░░ 0%');
    expect(progressBar(100, 200)).toBe('▓▓▓▓▓▓▓▓▓▓░░░░░░░░░░ 50%');
    expect(progressBar(200, 200)).toBe('▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓▓ 100%');
    expect(progressMessage('people.csv', 1234, 5000, 3.2).text).toBe(
      'Importing people.csv: 1,234 of 5,000 rows',
    );
  });

  it('is sent on a steady cadence however slow the batches, never twice at once', async () => {
    const sent: { at: number; done: number }[] = [];
    let running = 0;
    let overlapped = false;
    const reporter = new ProgressReporter(
      async (done) => {
        running++;
        if (running > 1) overlapped = true;
        sent.push({ at: Date.now(), done });
        await new Promise((r) => setTimeout(r, 5));
        running--;
      },
      { intervalMs: 40 },
    );
    reporter.set(0, 100);
    reporter.start();
    // One slow batch: nothing changes for 300 ms, yet the message keeps being refreshed.
    await new Promise((r) => setTimeout(r, 300));
    reporter.set(100, 100);
    await new Promise((r) => setTimeout(r, 60));
    await reporter.stop();
    const count = sent.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(sent.length).toBe(count);
    expect(overlapped).toBe(false);
    // Every 40 ms, give or take a busy machine's timers: well inside the 300 ms the batch took.
    expect(sent.length).toBeGreaterThanOrEqual(4);
    const gaps = sent.slice(1).map((s, i) => s.at - (sent[i]?.at ?? 0));
    expect(Math.max(...gaps)).toBeLessThan(200);
    expect(sent.at(-1)?.done).toBe(100);
  });
});
