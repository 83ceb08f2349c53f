import { Worker } from 'node:worker_threads';
import type { Feature } from '../src/features/feature.ts';
import { ackAwaited, stepAside, waitingAcks, waitingAcksBuffer } from '../src/shared/waiting-acks.ts';
import { startTestApp } from './support/app.ts';

// Bulk work (an import's preview and batches) steps aside while a Slack request waits for its
// acknowledgement, in this thread or in the bulk jobs thread, which shares the count.

const elapsed = async (work: () => Promise<unknown>) => {
  const started = performance.now();
  await work();
  return performance.now() - started;
};

describe('stepping aside for Slack', () => {
  it('goes on at once when no request waits', async () => {
    expect(waitingAcks()).toBe(0);
    expect(await elapsed(() => stepAside(1_000))).toBeLessThan(200);
  });

  it('waits until the waiting request is acknowledged', async () => {
    const acked = ackAwaited();
    expect(waitingAcks()).toBe(1);
    const timer = setTimeout(acked, 150);
    const took = await elapsed(() => stepAside(5_000));
    clearTimeout(timer);
    expect(took).toBeGreaterThanOrEqual(140);
    expect(took).toBeLessThan(2_000);
    expect(waitingAcks()).toBe(0);
    // Said twice (the ack, then the request's end), it counts once.
    acked();
    expect(waitingAcks()).toBe(0);
  });

  it('waits at most its limit, so steady traffic slows bulk work but never stops it', async () => {
    const acked = ackAwaited();
    try {
      const took = await elapsed(() => stepAside(100));
      expect(took).toBeGreaterThanOrEqual(90);
      expect(took).toBeLessThan(1_500);
    } finally {
      acked();
    }
  });

  it('in the bulk jobs thread, waits for a request the thread that answers Slack is working', async () => {
    const acked = ackAwaited();
    // The module as the bulk jobs thread loads it, sharing this thread's count.
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       import(workerData.module).then(async (m) => {
         m.shareWaitingAcks(workerData.buffer);
         parentPort.postMessage({ waiting: m.waitingAcks() });
         const started = performance.now();
         await m.stepAside(10000);
         parentPort.postMessage({ took: performance.now() - started });
       });`,
      {
        eval: true,
        workerData: {
          module: new URL('../src/shared/waiting-acks.ts', import.meta.url).href,
          buffer: waitingAcksBuffer(),
        },
      },
    );
    try {
      const messages: Record<string, number>[] = [];
      const next = () =>
        new Promise<Record<string, number>>((ok, failed) => {
          worker.once('message', ok);
          worker.once('error', failed);
        });
      messages.push(await next());
      expect(messages[0]).toEqual({ waiting: 1 });
      const done = next();
      await new Promise((r) => setTimeout(r, 200));
      acked();
      const { took } = await done;
      expect(took).toBeGreaterThanOrEqual(150);
      expect(took).toBeLessThan(5_000);
    } finally {
      acked();
      await worker.terminate();
    }
  });
});

describe('the count of requests waiting for their acknowledgement', () => {
  it('counts a request until its ack, and none is left however its handler ends', async () => {
    let seenBeforeAck = -1;
    let seenAfterAck = -1;
    const probe: Feature = {
      name: 'probe',
      slack(app) {
        app.command('/probe', async ({ ack, command }) => {
          seenBeforeAck = waitingAcks();
          await ack();
          seenAfterAck = waitingAcks();
          if (command.text === 'late') throw new Error('a handler that fails after its ack');
        });
      },
    };
    const t = await startTestApp({ features: [probe] });
    try {
      await t.slack.command('/probe', '', { user: 'UADMIN' });
      expect(seenBeforeAck).toBe(1);
      expect(seenAfterAck).toBe(0);
      await Promise.all([
        t.slack.command('/probe', 'late', { user: 'UADMIN' }),
        t.slack.command('/probe', '', { user: 'UMEMBER' }),
        // A workspace that has not installed Roster is answered by the middleware.
        t.slack.sendSigned(
          new URLSearchParams({
            team_id: 'T_ELSEWHERE',
            user_id: 'UOTHER',
            command: '/probe',
            text: '',
          }).toString(),
          'application/x-www-form-urlencoded',
        ),
      ]);
      expect(waitingAcks()).toBe(0);
    } finally {
      await t.stop();
    }
  });
});
