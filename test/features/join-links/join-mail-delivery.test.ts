import { createHmac } from 'node:crypto';
import { Writable } from 'node:stream';
import { query, sql } from '../../../src/db/sql.ts';
import { Account } from '../../../src/features/accounts/account.entity.ts';
import { JoinConfirmation } from '../../../src/features/join-links/join-link.entity.ts';
import { JOIN_JOBS } from '../../../src/features/join-links/join-link.service.ts';
import {
  sendConfirmation,
  tellJoinerOfDecision,
} from '../../../src/features/join-links/join-mail.delivery.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { newToken } from '../../../src/shared/ids.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import {
  eventually,
  SIGNING_SECRET,
  startSecondInstance,
  startTestApp,
  type TestApp,
} from '../../support/app.ts';
import { links } from '../../support/smtp-sink.ts';
import { httpFrom, openForm, postLink } from './support.ts';

const lines: string[] = [];
const logger = createLogger(
  'info',
  new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  }),
);
let t: TestApp;

beforeAll(async () => {
  t = await startTestApp({ seatLimit: 1000, logger });
});
afterAll(() => t.stop());

const confirmLink = (mail: Parameters<typeof links>[0]) =>
  links(mail).find((l) => l.includes('/join/confirm/'))!;

describe('join emails', () => {
  it('are retried as long as invitations are', async () => {
    const queues = await query<Record<string, unknown>>(
      t.em(),
      sql`select name, retry_limit, retry_delay, retry_backoff, retry_delay_max from pgboss.queue
           where name = any(${['invites.deliver', JOIN_JOBS.sendConfirmation, JOIN_JOBS.tellJoiner]})`,
    );
    const policy = (name: string) => {
      const { name: _, ...rest } = queues.find((q) => q.name === name) ?? {};
      return rest;
    };
    expect(policy('invites.deliver')).toMatchObject({ retry_limit: 30 });
    expect(policy(JOIN_JOBS.sendConfirmation)).toEqual(policy('invites.deliver'));
    expect(policy(JOIN_JOBS.tellJoiner)).toEqual(policy('invites.deliver'));
  });

  it('are retried as long as invitations are on a database an earlier Roster made the queue in', async () => {
    // As the earlier version left its queue: 8 retries, 2 s apart, doubling.
    await query(
      t.em(),
      sql`update pgboss.queue set retry_limit = 8, retry_delay = 2, retry_delay_max = null
           where name = ${JOIN_JOBS.sendConfirmation}`,
    );
    const second = await startSecondInstance(t);
    try {
      const [row] = await query<{ retry_limit: number; retry_delay_max: number | null }>(
        t.em(),
        sql`select retry_limit, retry_delay_max from pgboss.queue where name = ${JOIN_JOBS.sendConfirmation}`,
      );
      expect(row).toEqual({ retry_limit: 30, retry_delay_max: 600 });
    } finally {
      await second.stop();
    }
  });

  it('sent again after the sending worked but was not recorded, carry the same link, and the first still works', async () => {
    const { url } = await postLink(t);
    const email = 'twice-sent@outside.test';
    const form = await openForm('127.0.3.10', url);
    await form.submit('Twice Sent', email);
    const first = confirmLink(await t.smtp.waitForMail((m) => m.toText === email));
    // Recorded as sent once the job is done with it.
    const row = await eventually(() => t.em().findOne(JoinConfirmation, { email, sentAt: { $ne: null } }));
    // As when recording the send failed: the job runs again.
    await query(t.em(), sql`update join_confirmation set sent_at = null where id = ${row.id}`);
    await t.roster.deps.jobs.send(JOIN_JOBS.sendConfirmation, { confirmationId: row.id });
    await eventually(() => (t.smtp.messagesTo(email).length === 2 ? true : null));
    expect(t.smtp.messagesTo(email).map(confirmLink)).toEqual([first, first]);
    const opened = await httpFrom('127.0.3.11', first);
    expect(opened.status).toBe(200);
    expect(opened.body).toContain('Confirm to join Acme');
  });

  it('say until when their link works, and are not sent once it no longer does (a retry a day late)', async () => {
    const { url } = await postLink(t);
    const email = 'late-joiner@outside.test';
    await (await openForm('127.0.3.90', url)).submit('Late Joiner', email);
    const mail = await t.smtp.waitForMail((m) => m.toText === email);
    const row = await eventually(() => t.em().findOne(JoinConfirmation, { email, sentAt: { $ne: null } }));
    expect(mail.text).toContain(`The link works until ${row.expiresAt.toUTCString()}.`);
    // A join link ending before the confirmation's 24 hours: the email gives the link's end.
    const { url: shortUrl, linkId } = await postLink(t);
    const ends = new Date(Date.now() + 3 * 3_600_000);
    await query(t.em(), sql`update join_link set expires_at = ${ends} where id = ${linkId}`);
    await (await openForm('127.0.3.92', shortUrl)).submit('Soon Joiner', 'soon-joiner@outside.test');
    const soon = await t.smtp.waitForMail((m) => m.toText === 'soon-joiner@outside.test');
    const [{ at }] = (await query<{ at: Date }>(
      t.em(),
      sql`select expires_at as at from join_link where id = ${linkId}`,
    )) as [{ at: Date }];
    expect(soon.text).toContain(`The link works until ${new Date(at).toUTCString()}.`);
    // As a send still queued when the confirmation's time ran out (Roster stopped for a day, say).
    await query(
      t.em(),
      sql`update join_confirmation set sent_at = null, expires_at = now() - interval '1 minute' where id = ${row.id}`,
    );
    await sendConfirmation(t.roster.deps, row.id, { lastAttempt: false });
    expect(t.smtp.messagesTo(email)).toHaveLength(1);
  });

  it("carry a link that the confirmation's id and the secret alone do not give, and one made before still works", async () => {
    const { url, linkId } = await postLink(t);
    // What the link would be without a random part of its own: derived from the id and the secret alone.
    const key = createHmac('sha256', SIGNING_SECRET).update('roster-join-confirmation').digest();
    const fromIdAlone = (id: string) => createHmac('sha256', key).update(id).digest('base64url');
    const email = 'nonce@outside.test';
    await (await openForm('127.0.3.12', url)).submit('Nonce Person', email);
    const link = confirmLink(await t.smtp.waitForMail((m) => m.toText === email));
    const row = await eventually(() => t.em().findOne(JoinConfirmation, { email, sentAt: { $ne: null } }));
    const [stored] = await query<{ token_nonce: string | null }>(
      t.em(),
      sql`select token_nonce from join_confirmation where id = ${row.id}`,
    );
    expect(stored?.token_nonce).toMatch(/^[A-Za-z0-9_-]{22,}$/);
    expect(link.endsWith(`/join/confirm/${fromIdAlone(row.id)}`)).toBe(false);

    // A confirmation queued before links had a random part (no nonce): its email carries the link derived
    // as then, which the first attempt may already have sent.
    const em = t.em();
    const old = em.create(JoinConfirmation, {
      joinLink: linkId,
      email: 'queued-before@outside.test',
      name: 'Queued Before',
      tokenHash: newToken().hash,
      expiresAt: new Date(Date.now() + 86_400_000),
    });
    await em.flush();
    await query(em, sql`update join_confirmation set token_nonce = null where id = ${old.id}`);
    await t.roster.deps.jobs.send(JOIN_JOBS.sendConfirmation, { confirmationId: old.id });
    const oldLink = confirmLink(await t.smtp.waitForMail((m) => m.toText === 'queued-before@outside.test'));
    expect(oldLink.endsWith(`/join/confirm/${fromIdAlone(old.id)}`)).toBe(true);
    const opened = await httpFrom('127.0.3.13', oldLink);
    expect(opened.status).toBe(200);
    expect(opened.body).toContain('Confirm to join Acme');
  });

  it('when a confirmation cannot be sent at all: logs an error, tells the poster once a day, and the person may ask again', async () => {
    const since = t.standin.messages.length;
    const { linkId, url } = await postLink(t);
    const em = t.em();
    const pending = (email: string) =>
      em.create(JoinConfirmation, {
        joinLink: linkId,
        email,
        name: 'Unlucky',
        tokenHash: newToken().hash,
        expiresAt: new Date(Date.now() + 86_400_000),
      });
    const one = pending('unlucky@outside.test');
    const two = pending('unlucky-too@outside.test');
    await em.flush();
    await t.smtp.stop();
    try {
      for (const c of [one, two]) {
        await expect(sendConfirmation(t.roster.deps, c.id, { lastAttempt: true })).rejects.toThrow();
      }
    } finally {
      await t.smtp.start();
    }
    const told = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && String(m.text).includes('could not email a confirmation'),
    );
    expect(String(told.text)).toContain('<#C0GENERAL>');
    expect(
      t.standin.messages
        .slice(since)
        .filter((m) => String(m.text).includes('could not email a confirmation')),
    ).toHaveLength(1);
    const gaveUp = lines
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg === 'gave up emailing a join confirmation');
    expect(gaveUp).toHaveLength(2);
    expect(gaveUp[0]).toMatchObject({ level: 50, confirmationId: one.id, joinLinkId: linkId });
    expect(JSON.stringify(gaveUp)).not.toContain('unlucky@outside.test');

    // The lost confirmation holds nothing back: the form sends a new one once mail works.
    const form = await openForm('127.0.3.20', url);
    await form.submit('Unlucky', 'unlucky@outside.test');
    const mail = await t.smtp.waitForMail((m) => m.toText === 'unlucky@outside.test');
    expect(confirmLink(mail)).toBeDefined();
  });

  it("tells the poster of a mail server's refusal for now without the joiner's address, in the DM, the log and the job queue's record", async () => {
    const { linkId } = await postLink(t);
    const em = t.em();
    const confirmation = em.create(JoinConfirmation, {
      joinLink: linkId,
      email: 'refused.joiner@outside.test',
      name: 'Refused',
      tokenHash: newToken().hash,
      expiresAt: new Date(Date.now() + 86_400_000),
    });
    await em.flush();
    t.smtp.deferredRecipients.add('refused.joiner@outside.test');
    try {
      // What each try throws is what the job queue logs and stores: the server's answer, not the address.
      for (const lastAttempt of [false, true]) {
        const thrown = await sendConfirmation(t.roster.deps, confirmation.id, { lastAttempt }).then(
          () => null,
          (err: Error) => err,
        );
        expect(thrown?.message).toContain('450 4.2.0');
        expect(JSON.stringify({ ...thrown, message: thrown?.message, stack: thrown?.stack })).not.toContain(
          'refused.joiner@outside.test',
        );
      }
    } finally {
      t.smtp.deferredRecipients.clear();
    }
    const told = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && String(m.text).includes('Recipient address rejected'),
    );
    expect(String(told.text)).not.toContain('refused.joiner@outside.test');
    // In Roster's words, as every mail failure is told, not the transport's raw error.
    expect(String(told.text)).toContain(
      'The last error was: the mail server did not take the recipient for now (450 4.2.0: Recipient address rejected: Greylisted)',
    );
    expect(String(told.text)).not.toMatch(/\[address\]|Mail command failed/);
    const logged = lines.filter((l) => l.includes(confirmation.id));
    expect(logged.length).toBeGreaterThan(0);
    expect(logged.join('\n')).not.toContain('refused.joiner@outside.test');
  });

  it('ends at once when the mail server refuses the address for good, and says it was the address', async () => {
    const since = t.standin.messages.length;
    const { linkId, url } = await postLink(t);
    const mistyped = 'mistyped.joiner@outside.tst';
    t.smtp.refusedRecipients.add(mistyped);
    try {
      const page = await (await openForm('127.0.3.30', url)).submit('Mistyped', mistyped);
      // The joiner is shown the address they typed, and told what to do if it is wrong.
      expect(page.body).toContain('mistyped.joiner@outside.tst');
      expect(page.body).toContain('if it is mistyped, no email can reach you');
      const told = await t.standin.waitForMessage(
        (m) =>
          t.standin.messages.indexOf(m) >= since &&
          m.channel === 'DUADMIN' &&
          String(m.text).includes('could not email a confirmation'),
        10_000,
      );
      const text = String(told.text);
      expect(text).toContain(
        'the mail server refused the recipient (550 5.1.1: Recipient address rejected: User unknown in local recipient table)',
      );
      expect(text).toContain('Roster did not try again');
      expect(text).not.toContain('several hours');
      expect(text).not.toContain('SMTP_URL');
      expect(text).not.toContain(mistyped);
      const confirmation = await t.em().findOneOrFail(JoinConfirmation, { email: mistyped });
      // Its one attempt ended it: no retry waits, and the link it would have carried no longer works.
      expect(confirmation.sentAt).toBeNull();
      expect(confirmation.expiresAt.getTime()).toBeLessThanOrEqual(Date.now());
      const job = await eventually(async () => {
        const [row] = await query<{ state: string; retry_count: number }>(
          t.em(),
          sql`select state, retry_count from pgboss.job where name = ${JOIN_JOBS.sendConfirmation}
                and data->>'confirmationId' = ${confirmation.id}`,
        );
        return row && row.state !== 'active' ? row : null;
      });
      expect(job).toMatchObject({ state: 'completed', retry_count: 0 });
      const gaveUp = lines
        .map((l) => JSON.parse(l))
        .filter(
          (l) => l.msg === 'gave up emailing a join confirmation' && l.confirmationId === confirmation.id,
        );
      expect(gaveUp).toHaveLength(1);
      expect(gaveUp[0]).toMatchObject({ level: 50, joinLinkId: linkId });
      expect(JSON.stringify(gaveUp)).not.toContain(mistyped);
    } finally {
      t.smtp.refusedRecipients.clear();
    }
    expect(
      t.standin.messages
        .slice(since)
        .filter((m) => String(m.text).includes('could not email a confirmation')),
    ).toHaveLength(1);
    // With the address corrected, the form sends a confirmation at once.
    await (await openForm('127.0.3.31', url)).submit('Mistyped', 'mistyped.joiner@outside.test');
    expect(
      confirmLink(await t.smtp.waitForMail((m) => m.toText === 'mistyped.joiner@outside.test')),
    ).toBeDefined();
  });

  it('ends at once when the mail server refuses the email itself for good, and retries one it will not take for now', async () => {
    const since = t.standin.messages.length;
    const { url } = await postLink(t);
    const flagged = 'flagged.joiner@outside.test';
    const queued = 'queued.joiner@outside.test';
    t.smtp.refusedAtData.set(flagged, 554);
    t.smtp.refusedAtData.set(queued, 451);
    const jobOf = (email: string) =>
      eventually(async () => {
        const [row] = await query<{ state: string; retry_count: number }>(
          t.em(),
          sql`select j.state, j.retry_count from pgboss.job j join join_confirmation c
                on c.id::text = j.data->>'confirmationId'
              where j.name = ${JOIN_JOBS.sendConfirmation} and c.email = ${email}`,
        );
        return row && row.state !== 'active' && row.state !== 'created' ? row : null;
      });
    try {
      await (await openForm('127.0.3.32', url)).submit('Flagged', flagged);
      const told = await t.standin.waitForMessage(
        (m) =>
          t.standin.messages.indexOf(m) >= since &&
          m.channel === 'DUADMIN' &&
          String(m.text).includes('could not email a confirmation'),
        10_000,
      );
      const text = String(told.text);
      expect(text).toContain('the mail server refused the message (554 5.7.1: Message rejected as spam)');
      expect(text).toContain('refused the email itself');
      expect(text).toContain('Roster did not try again');
      expect(text).not.toContain('typo');
      expect(text).not.toContain(flagged);
      expect(await jobOf(flagged)).toMatchObject({ state: 'completed', retry_count: 0 });
      const confirmation = await t.em().findOneOrFail(JoinConfirmation, { email: flagged });
      expect(confirmation.sentAt).toBeNull();
      expect(confirmation.expiresAt.getTime()).toBeLessThanOrEqual(Date.now());

      await (await openForm('127.0.3.33', url)).submit('Queued', queued);
      expect(await jobOf(queued)).toMatchObject({ state: 'retry' });
      t.smtp.refusedAtData.delete(queued);
      expect(confirmLink(await t.smtp.waitForMail((m) => m.toText === queued, 20_000))).toBeDefined();
    } finally {
      t.smtp.refusedAtData.clear();
    }
    expect(
      t.standin.messages
        .slice(since)
        .filter((m) => String(m.text).includes('could not email a confirmation')),
    ).toHaveLength(1);
  });

  it('tells a joiner the decision once, and when that cannot be done at all, asks the admin who decided to', async () => {
    const em = t.em();
    const account = em.getReference(Account, (await t.account()).id);
    const request = (email: string) =>
      em.create(SeatRequest, {
        account,
        kind: 'join',
        status: 'rejected',
        email,
        role: 'employee',
        requestedBy: 'UADMIN',
        decidedBy: 'UOWNER',
        decidedAt: new Date(),
        payload: { surface: 'web', slackUserId: null },
        expiresAt: new Date(Date.now() + 86_400_000),
      });
    const told = request('told@outside.test');
    const lost = request('lost@outside.test');
    await em.flush();

    await tellJoinerOfDecision(t.roster.deps, told.id, { lastAttempt: false });
    await tellJoinerOfDecision(t.roster.deps, told.id, { lastAttempt: false });
    expect(t.smtp.messagesTo('told@outside.test')).toHaveLength(1);

    await t.smtp.stop();
    try {
      await expect(tellJoinerOfDecision(t.roster.deps, lost.id, { lastAttempt: true })).rejects.toThrow();
    } finally {
      await t.smtp.start();
    }
    const asked = await t.standin.waitForMessage(
      (m) => m.channel === 'DUOWNER' && String(m.text).includes('could not tell lost@outside.test'),
    );
    expect(String(asked.text)).toContain('their place was rejected');
    // The mail failure in Roster's words, not the transport's.
    expect(String(asked.text)).toContain('The last error was: Roster could not reach the mail server (');
    expect(
      lines.some((l) => l.includes('gave up telling a joiner the decision') && l.includes('"level":50')),
    ).toBe(true);

    // An address refused for good: the admin is asked on the first attempt, not hours later.
    const refused = request('refused.decision@outside.test');
    await em.flush();
    t.smtp.refusedRecipients.add('refused.decision@outside.test');
    try {
      await tellJoinerOfDecision(t.roster.deps, refused.id, { lastAttempt: false });
    } finally {
      t.smtp.refusedRecipients.clear();
    }
    const askedNow = await t.standin.waitForMessage(
      (m) =>
        m.channel === 'DUOWNER' && String(m.text).includes('could not tell refused.decision@outside.test'),
    );
    expect(String(askedNow.text)).toContain(
      'the mail server refused the recipient (550 5.1.1: Recipient address rejected: User unknown in local recipient table). Their address is refused for good, so Roster did not try again.',
    );
    expect(String(askedNow.text)).not.toContain('several hours');

    // The email itself refused for good, once the server had read it: asked at once too, saying so.
    const flagged = request('flagged.decision@outside.test');
    await em.flush();
    t.smtp.refusedAtData.set('flagged.decision@outside.test', 554);
    try {
      await tellJoinerOfDecision(t.roster.deps, flagged.id, { lastAttempt: false });
    } finally {
      t.smtp.refusedAtData.clear();
    }
    const askedOfEmail = await t.standin.waitForMessage(
      (m) =>
        m.channel === 'DUOWNER' && String(m.text).includes('could not tell flagged.decision@outside.test'),
    );
    expect(String(askedOfEmail.text)).toContain(
      'the mail server refused the message (554 5.7.1: Message rejected as spam). The mail server refused the email itself, so Roster did not try again.',
    );
  });
});
