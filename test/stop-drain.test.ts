import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { eventually, startTestApp } from './support/app.ts';
import { type SlackStandin, startSlackStandin } from './support/slack-standin.ts';

// STOP_DRAIN_SECONDS: on a stop, /readyz says "stopping" (503) while Roster still serves, so a load balancer
// takes the instance out before its port closes.

const answer = async (url: string) => {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};
const refused = (url: string) =>
  fetch(url).then(
    () => false,
    () => true,
  );

describe('draining on a stop', () => {
  it('answers /readyz 503 "stopping" and still serves Slack and /healthz for the drain, then closes', async () => {
    const t = await startTestApp({ env: { STOP_DRAIN_SECONDS: '2' } });
    try {
      expect((await answer(`${t.url}/readyz`)).body.status).toBe('ready');
      const began = Date.now();
      const stopping = t.roster.stop();
      expect(await answer(`${t.url}/readyz`)).toEqual({
        status: 503,
        body: { status: 'stopping', reasons: ['Roster is stopping'] },
      });
      expect(await answer(`${t.url}/healthz`)).toEqual({ status: 200, body: { status: 'ok' } });
      const verified = await t.slack.urlVerification('still-here');
      expect({ status: verified.status, challenge: verified.json?.challenge }).toEqual({
        status: 200,
        challenge: 'still-here',
      });
      await eventually(() => refused(`${t.url}/healthz`), 10_000);
      const openFor = Date.now() - began;
      await stopping;
      expect(openFor).toBeGreaterThanOrEqual(1900);
    } finally {
      await t.stop();
    }
  }, 30_000);

  it('without STOP_DRAIN_SECONDS the port closes at once', async () => {
    const t = await startTestApp();
    try {
      const began = Date.now();
      const stopping = t.roster.stop();
      await eventually(() => refused(`${t.url}/healthz`), 10_000);
      expect(Date.now() - began).toBeLessThan(1000);
      await stopping;
    } finally {
      await t.stop();
    }
  }, 30_000);
});

describe('SIGTERM with STOP_DRAIN_SECONDS set', () => {
  const root = resolve(import.meta.dirname, '..');
  let standin: SlackStandin;
  let dataDir: string;
  let child: ChildProcess | undefined;
  beforeAll(async () => {
    standin = await startSlackStandin({ teamId: 'T0001', botToken: 'xoxb-drain-test' });
    dataDir = await mkdtemp(join(tmpdir(), 'roster-drain-'));
    await chmod(dataDir, 0o755);
  });
  afterAll(async () => {
    if (child?.pid && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    await standin.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('drains, then stops as usual and exits 0 without errors', async () => {
    const running = spawn(process.execPath, ['src/main.ts'], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH}`,
        HOME: process.env.HOME,
        SLACK_SIGNING_SECRET: 'drain-test-secret',
        SLACK_BOT_TOKEN: 'xoxb-drain-test',
        SLACK_API_URL: standin.apiUrl,
        DATA_DIR: dataDir,
        PORT: '0',
        PUBLIC_URL: 'http://localhost',
        LOG_LEVEL: 'info',
        STOP_DRAIN_SECONDS: '2',
      },
    });
    child = running;
    let output = '';
    running.stdout?.on('data', (c) => (output += c));
    running.stderr?.on('data', (c) => (output += c));
    const exited = new Promise<number | null>((ok) => running.on('exit', (code) => ok(code)));
    const port = await eventually(() => output.match(/Roster is listening on port (\d+)/)?.[1], 60_000);
    const url = `http://127.0.0.1:${port}`;
    expect((await answer(`${url}/readyz`)).status).toBe(200);

    running.kill('SIGTERM');
    const during = await eventually(async () => {
      const now = await answer(`${url}/readyz`);
      return now.status === 503 ? now : undefined;
    });
    expect(during.body).toEqual({ status: 'stopping', reasons: ['Roster is stopping'] });
    expect(await exited).toBe(0);
    expect(output).toContain('draining');
    expect(output).toContain('"msg":"stopped"');
    expect(output.split('\n').filter((l) => /"level":(50|60)/.test(l))).toEqual([]);
  }, 90_000);
});
