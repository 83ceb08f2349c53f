import { Writable } from 'node:stream';
import pg from 'pg';
import { Invitation } from '../../../src/features/invites/invitation.entity.ts';
import { INVITE_JOBS } from '../../../src/features/invites/invitation.service.ts';
import { deliverBatch, deliverInvitation } from '../../../src/features/invites/invite.delivery.ts';
import { createUser } from '../../../src/features/people/people.service.ts';
import { TryLater } from '../../../src/shared/jobs.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { SLACK_CALL_JOB } from '../../../src/slack/later.ts';
import { eventually, jobsDrained, startTestApp, type TestApp } from '../../support/app.ts';
import { links } from '../../support/smtp-sink.ts';
import { textOf } from '../../support/views.ts';

/*
 * A CSV import queues one delivery job per batch of invitations, not one per invitation. The job delivers
 * them one after another; one that fails is retried with the batch, and the others are never sent twice.
 */

/** Every line the app logs. */
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
  t = await startTestApp({ seatLimit: 10, logger });
});
afterAll(() => t.stop());

const emails = ['al.batch@acme.test', 'bo.batch@acme.test', 'cy.batch@acme.test'];

async function importFile() {
  const csv = [
    'first_name,email,role,send_invitation',
    ...emails.map((e) => `${e.split('.')[0]},${e},employee,yes`),
  ].join('\n');
  const file = t.standin.addFile({ id: 'FBATCH001', name: 'batch.csv', content: csv, user: 'UADMIN' });
  await t.slack.fileShare('UADMIN', file);
  const preview = await eventually(
    () =>
      t.standin.messages.findLast((m) => m.channel === 'DUADMIN' && /Preview of batch\.csv/.test(textOf(m))),
    20_000,
  );
  await t.slack.clickButton(preview, 'Import 3 rows', { user: 'UADMIN' });
}

const jobs = (name: string) =>
  t
    .em()
    .getConnection()
    .execute<{ id: string; state: string; data: any }[]>(
      `select j.id, j.state, j.data from pgboss.job j where j.name = ?`,
      [name],
    );

/** An invited person and their pending invitation, built directly so no queued job races the test. */
async function pendingInvitation(email: string) {
  const em = t.em();
  const account = await t.account();
  const user = await createUser(em, account, { email, role: 'client', status: 'invited', addedBy: 'UADMIN' });
  const invitation = em.create(Invitation, {
    account,
    user,
    expiresAt: new Date(Date.now() + 86_400_000),
    invitedBy: 'UADMIN',
  });
  await em.flush();
  return { user, invitation };
}

describe('an import batch of invitations', () => {
  it('is delivered by one job; a mail the server will not take for now is tried again, and no other invitee is mailed twice', async () => {
    t.smtp.deferredRecipients.add('bo.batch@acme.test');
    await importFile();

    // Al and Cy are mailed; Bo's mail is greylisted and recorded as failed for now.
    await t.smtp.waitForMail((m) => m.toText.includes('al.batch@acme.test'), 20_000);
    await t.smtp.waitForMail((m) => m.toText.includes('cy.batch@acme.test'), 20_000);
    const invitationOf = async (email: string) =>
      (await t.em().find(Invitation, { user: { email } }, { populate: ['user'] }))[0];
    const bo = await eventually(async () => {
      const inv = await invitationOf('bo.batch@acme.test');
      return inv?.lastError ? inv : null;
    });
    expect(bo.deliveredAt).toBeNull();
    expect(bo.lastError).toMatch(/^Email failed/);

    const batch = await jobs(INVITE_JOBS.deliverBatch);
    expect(batch).toHaveLength(1);
    const ids = await Promise.all(emails.map(async (e) => (await invitationOf(e))?.id));
    expect(batch[0]?.data.invitationIds).toEqual(ids);
    expect(await jobs(INVITE_JOBS.deliver)).toHaveLength(0);

    // The mail server takes Bo's mail now: the batch's retry delivers it, and only it.
    t.smtp.deferredRecipients.clear();
    await t.smtp.waitForMail((m) => m.toText.includes('bo.batch@acme.test'), 20_000);
    await eventually(async () =>
      (await jobs(INVITE_JOBS.deliverBatch))[0]?.state === 'completed' ? true : null,
    );
    for (const email of emails) expect(t.smtp.messagesTo(email)).toHaveLength(1);
    const delivered = await t.em().find(Invitation, { id: { $in: ids as string[] } });
    expect(delivered.map((i) => i.deliveredAt)).not.toContain(null);
    expect(delivered.find((i) => i.id === bo.id)?.deliveryAttempts).toBeGreaterThanOrEqual(2);
  });

  it('is never sent twice by two deliveries of one invitation at once (a batch started again while it runs)', async () => {
    const { invitation } = await pendingInvitation('twice.batch@acme.test');
    const deliver = () =>
      deliverInvitation(t.roster.deps, t.roster.deps.invites, invitation.id, { lastAttempt: false });
    const outcomes = await Promise.allSettled([deliver(), deliver(), deliver()]);
    // Each other delivery either found it delivered or was told to come back later; none sent it.
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(TryLater);
    await t.smtp.waitForMail((m) => m.toText.includes('twice.batch@acme.test'));
    await new Promise((r) => setTimeout(r, 500));
    expect(t.smtp.messagesTo('twice.batch@acme.test')).toHaveLength(1);
    const after = await t.em().findOneOrFail(Invitation, invitation.id);
    expect(after.deliveryAttempts).toBe(1);
    expect(after.deliveringUntil).toBeNull();
    // Told to come back later, it finds the invitation delivered and sends nothing.
    await deliver();
    expect(t.smtp.messagesTo('twice.batch@acme.test')).toHaveLength(1);
  });

  it('is recorded without waiting for the person, so a deactivation that holds them never deadlocks with it', async () => {
    const { user, invitation } = await pendingInvitation('held.batch@acme.test');
    // A deactivation: the person first, then their invitation.
    const other = new pg.Client({ connectionString: t.db.url });
    await other.connect();
    try {
      await other.query('begin');
      await other.query('select id from app_user where id = $1 for update', [user.id]);
      const recorded = t.roster.deps.invites.recordDelivery(t.em(), invitation.id, {
        method: 'slack_dm',
        slackUserId: 'UHELD',
      });
      await new Promise((r) => setTimeout(r, 300));
      await other.query(`update invitation set status = 'cancelled' where id = $1`, [invitation.id]);
      await other.query('commit');
      await recorded;
    } finally {
      await other.end();
    }
    const after = await t.em().findOneOrFail(Invitation, invitation.id, { populate: ['user'] });
    expect(after.status).toBe('cancelled');
    expect(after.deliveredAt).not.toBeNull();
    expect(after.user.getEntity().slackUserId).toBe('UHELD');
  });
});

describe('an invitation the mail server will not take for now', () => {
  it("is logged, stored by the job queue and recorded without the invitee's address, and told to the inviter alone with it, saying what the server answered", async () => {
    // Postfix repeats the address it greylists: `450 4.2.0 <ana.refused@acme.test>: Recipient address rejected`.
    const single = 'ana.refused@acme.test';
    const inBatch = 'bea.refused@acme.test';
    t.smtp.deferredRecipients.add(single);
    t.smtp.deferredRecipients.add(inBatch);
    const one = await pendingInvitation(single);
    const two = await pendingInvitation(inBatch);
    const queue = t.roster.deps.jobs;
    const ids: Record<string, string> = {};
    try {
      // The per-invitation job and an import's batch job each fail once and wait for their retry.
      ids[INVITE_JOBS.deliver] = (await queue.send(INVITE_JOBS.deliver, {
        invitationId: one.invitation.id,
      }))!;
      ids[INVITE_JOBS.deliverBatch] = (await queue.send(INVITE_JOBS.deliverBatch, {
        invitationIds: [two.invitation.id],
      }))!;
      const failed = await eventually(async () => {
        const rows = await t
          .em()
          .getConnection()
          .execute<{ name: string; output: string }[]>(
            `select name, output::text as output from pgboss.job where id in (?, ?) and state = 'retry'`,
            Object.values(ids),
          );
        return rows.length === 2 ? rows : null;
      }, 20_000);
      for (const job of failed) {
        expect(job.output).not.toContain(single);
        expect(job.output).not.toContain(inBatch);
        expect(job.output).toContain('the mail server did not take the recipient for now (450 4.2.0');
      }
      // Roster's last attempt tells the inviter.
      await expect(
        deliverInvitation(t.roster.deps, t.roster.deps.invites, one.invitation.id, { lastAttempt: true }),
      ).rejects.toThrow('450 4.2.0');
    } finally {
      for (const [name, id] of Object.entries(ids)) await queue.boss.cancel(name, id);
      t.smtp.deferredRecipients.clear();
    }

    const told = await t.standin.waitForMessage(
      (m) => m.channel === 'DUADMIN' && textOf(m).includes(`${single} could not be delivered`),
    );
    expect(textOf(told)).toContain(
      'Email failed: the mail server did not take the recipient for now (450 4.2.0: Recipient address rejected: Greylisted)',
    );
    expect(textOf(told)).toContain('Roster kept trying for several hours');
    const recorded = await t.em().find(Invitation, { id: [one.invitation.id, two.invitation.id] });
    for (const invitation of recorded) {
      expect(invitation.lastError).toMatch(
        /^Email failed: the mail server did not take the recipient for now \(450 4\.2\.0/,
      );
    }

    // The log says what happened to these invitations, and nowhere whom they were for.
    const logged = lines.join('\n');
    const failures = lines.filter((l) => Object.values(ids).some((id) => l.includes(id)));
    expect(failures.length).toBeGreaterThanOrEqual(2);
    expect(failures.join('\n')).toContain('the mail server did not take the recipient for now (450 4.2.0');
    const gaveUp = lines.find(
      (l) => l.includes('gave up delivering an invitation') && l.includes(one.invitation.id),
    );
    expect(gaveUp).toContain('450 4.2.0');
    // The inviter typed the address and sees it in the message that tells them, to spot a typo; no other
    // message carries an address.
    const others = JSON.stringify(t.standin.messages.filter((m) => m !== told));
    for (const address of [single, inBatch]) {
      expect(logged).not.toContain(address);
      expect(others).not.toContain(address);
      expect(recorded.map((i) => i.lastError).join('\n')).not.toContain(address);
    }
  });
});

describe('an invitation the mail server refuses for good (a mistyped address)', () => {
  it('fails at once: recorded as not delivered with the reason, the inviter told, and never sent again', async () => {
    const typo = 'dan.typo@acme.test';
    const inBatch = 'eve.typo@acme.test';
    const later = 'fay.later@acme.test';
    t.smtp.refusedRecipients.add(typo);
    t.smtp.refusedRecipients.add(inBatch);
    // Greylisted: keeps the batch retrying, which must not take up the refused one again.
    t.smtp.deferredRecipients.add(later);
    const one = await pendingInvitation(typo);
    const two = await pendingInvitation(inBatch);
    const three = await pendingInvitation(later);
    const queue = t.roster.deps.jobs;
    const single = (await queue.send(INVITE_JOBS.deliver, { invitationId: one.invitation.id }))!;
    const batch = (await queue.send(INVITE_JOBS.deliverBatch, {
      invitationIds: [two.invitation.id, three.invitation.id],
    }))!;
    const stateOf = async (id: string) =>
      (
        await t
          .em()
          .getConnection()
          .execute<{ state: string }[]>(`select state from pgboss.job where id = ?`, [id])
      )[0]?.state;
    try {
      // The single delivery ends on its first attempt rather than being retried for hours.
      expect(await eventually(async () => ((await stateOf(single)) === 'completed' ? true : null))).toBe(
        true,
      );

      const toldOf = (address: string) =>
        t.standin.messages.filter(
          (m) => m.channel === 'DUADMIN' && textOf(m).includes(`${address} could not be delivered`),
        );
      const toldOfBatch = () =>
        t.standin.messages.filter((m) => m.channel === 'DUADMIN' && textOf(m).includes(inBatch));
      const told = await eventually(() => toldOf(typo)[0] ?? null);
      const text = textOf(told);
      expect(text).toContain(
        'Email failed: the mail server refused the recipient (550 5.1.1: Recipient address rejected: User unknown in local recipient table)',
      );
      expect(text).toContain('Roster did not try again');
      expect(text).not.toContain('kept trying');
      expect(JSON.stringify(told)).toContain('invite_resend');
      // The batch's refused address is told in the batch's one notice, named so a typo can be spotted.
      const batchTold = await eventually(() => toldOfBatch()[0] ?? null);
      expect(textOf(batchTold)).toContain(
        ':warning: *1 invitation from your CSV import could not be delivered.*',
      );
      expect(textOf(batchTold)).toContain(
        `• 1 address the mail server refuses for good, most often a typo: ${inBatch}. Roster did not try again.`,
      );
      for (const { invitation } of [one, two]) {
        const failed = await t.em().findOneOrFail(Invitation, invitation.id);
        expect(failed).toMatchObject({ deliveredAt: null, deliveryAttempts: 1, deliveringUntil: null });
        expect(failed.deliveryFailedAt).toBeInstanceOf(Date);
        expect(failed.lastError).toMatch(
          /^Email failed: the mail server refused the recipient \(550 5\.1\.1/,
        );
      }

      // The batch is retried for the greylisted one alone; once that is delivered, the refused one was
      // neither sent again nor told again.
      await eventually(async () => ((await stateOf(batch)) === 'retry' ? true : null), 20_000);
      t.smtp.deferredRecipients.clear();
      await t.smtp.waitForMail((m) => m.toText.includes(later), 20_000);
      await eventually(async () => ((await stateOf(batch)) === 'completed' ? true : null), 20_000);
      const again = await t.em().findOneOrFail(Invitation, two.invitation.id);
      expect(again.deliveryAttempts).toBe(1);
      expect(toldOfBatch()).toHaveLength(1);
      expect(toldOf(typo)).toHaveLength(1);
    } finally {
      for (const [name, id] of [
        [INVITE_JOBS.deliver, single],
        [INVITE_JOBS.deliverBatch, batch],
      ] as const)
        await queue.boss.cancel(name, id).catch(() => {});
      t.smtp.refusedRecipients.clear();
      t.smtp.deferredRecipients.clear();
    }
    expect(t.smtp.messagesTo(typo)).toHaveLength(0);

    // `/invite pending` says it failed, why, and what to do.
    await t.slack.command('/invite', 'pending', { user: 'UADMIN' });
    const pending = await t.standin.waitForResponse((r) => textOf(r.body).includes(typo));
    expect(textOf(pending.body)).toContain(
      `*${typo}*: Client (free), :warning: delivery failed (Email failed: the mail server refused the recipient (550 5.1.1: Recipient address rejected: User unknown in local recipient table)); check the address, correct it if it is wrong, and press Resend`,
    );

    // The log says it gave up, and why, without the address.
    const gaveUp = lines.find(
      (l) => l.includes('gave up delivering an invitation') && l.includes(one.invitation.id),
    );
    expect(gaveUp).toContain('550 5.1.1');
    for (const address of [typo, inBatch]) expect(lines.join('\n')).not.toContain(address);
  });
});

describe('an invitation whose email the mail server refuses for good once it has read it (552, 554)', () => {
  it('fails at once as a refused address does, telling the inviter it was the email; a 451 is tried again', async () => {
    const big = 'gus.large@acme.test';
    const spam = 'hana.spam@acme.test';
    const forNow = 'ike.queue@acme.test';
    t.smtp.refusedAtData.set(big, 552);
    t.smtp.refusedAtData.set(spam, 554);
    t.smtp.refusedAtData.set(forNow, 451);
    const one = await pendingInvitation(big);
    const two = await pendingInvitation(spam);
    const three = await pendingInvitation(forNow);
    const deliver = (id: string) =>
      deliverInvitation(t.roster.deps, t.roster.deps.invites, id, { lastAttempt: false });
    const toldOf = (address: string) =>
      t.standin.messages.filter(
        (m) => m.channel === 'DUADMIN' && textOf(m).includes(`${address} could not be delivered`),
      );
    try {
      // Not thrown: the job ends rather than being retried for hours.
      await deliver(one.invitation.id);
      await deliver(two.invitation.id);
      await expect(deliver(three.invitation.id)).rejects.toThrow(
        'Email failed: the mail server did not take the message for now (451 4.3.0: Error: queue file write error)',
      );
    } finally {
      t.smtp.refusedAtData.clear();
    }
    for (const [{ invitation }, address, said] of [
      [one, big, '552 5.3.4: Message size exceeds fixed limit'],
      [two, spam, '554 5.7.1: Message rejected as spam'],
    ] as const) {
      const failed = await t.em().findOneOrFail(Invitation, invitation.id);
      expect(failed).toMatchObject({ deliveredAt: null, deliveryAttempts: 1, deliveringUntil: null });
      expect(failed.deliveryFailedAt).toBeInstanceOf(Date);
      expect(failed.lastError).toBe(`Email failed: the mail server refused the message (${said})`);
      const told = await eventually(() => toldOf(address)[0] ?? null);
      expect(textOf(told)).toContain(`Email failed: the mail server refused the message (${said})`);
      expect(textOf(told)).toContain('refused the email itself');
      expect(textOf(told)).toContain('Roster did not try again');
      expect(textOf(told)).not.toContain('Correct the address');
      expect(JSON.stringify(told)).toContain('invite_resend');
    }
    const retried = await t.em().findOneOrFail(Invitation, three.invitation.id);
    expect(retried.deliveryFailedAt).toBeNull();
    expect(toldOf(forNow)).toHaveLength(0);
    await deliver(three.invitation.id);
    await t.smtp.waitForMail((m) => m.toText.includes(forNow));
    expect(t.smtp.messagesTo(big)).toHaveLength(0);
  });
});

describe('an invitation to someone in Slack whose DM failed and whose address the mail server refuses', () => {
  it('is tried again, as the next DM may go through', async () => {
    t.standin.addMember({ id: 'UIVY', name: 'ivy', realName: 'Ivy Both', email: 'ivy.both@acme.test' });
    t.standin.failNext('chat.postMessage', 'internal_error', 1, (args) => args.channel === 'UIVY');
    t.smtp.refusedRecipients.add('ivy.both@acme.test');
    const { invitation } = await pendingInvitation('ivy.both@acme.test');
    const deliver = () =>
      deliverInvitation(t.roster.deps, t.roster.deps.invites, invitation.id, { lastAttempt: false });
    try {
      await expect(deliver()).rejects.toThrow('550 5.1.1');
    } finally {
      t.smtp.refusedRecipients.clear();
    }
    const failed = await t.em().findOneOrFail(Invitation, invitation.id);
    expect(failed.deliveryFailedAt).toBeNull();
    await deliver();
    const delivered = await t.em().findOneOrFail(Invitation, invitation.id);
    expect(delivered).toMatchObject({ deliveryMethod: 'slack_dm', deliveryAttempts: 2 });
    expect(delivered.deliveredAt).toBeInstanceOf(Date);
  });
});

describe('the /invite summary of a round with an address refused for good', () => {
  it('ends at once, saying how many were delivered and that one could not be', async () => {
    t.smtp.refusedRecipients.add('hal.typo@acme.test');
    try {
      await t.slack.command('/invite', '', { user: 'UOWNER' });
      await t.slack.submitView(
        t.standin.lastOpenedView(),
        { emails: 'gus.round@acme.test, hal.typo@acme.test', role: 'client' },
        { user: 'UOWNER' },
      );
      const summary = await eventually(() =>
        t.standin.messages.find((m) => m.channel === 'DUOWNER' && /^Invitations:/.test(String(m.text))),
      );
      const last = await eventually(
        () =>
          t.standin.messages
            .filter((m) => m.ts === summary.ts)
            .map(textOf)
            .find((text) => text.includes('invitations delivered')) ?? null,
        20_000,
      );
      expect(last).toContain(
        ':warning: 1 of 2 invitations delivered (0 by Slack DM, 1 by email); 1 could not be: a DM from Roster says why for each, and `/invite pending` lists it with Resend.',
      );
      expect(last).not.toContain('All ');
    } finally {
      t.smtp.refusedRecipients.clear();
    }
  });
});

describe('an invitation emailed but not recorded', () => {
  it('is sent again with the same link, so the first email the person got still works', async () => {
    const email = 'dee.retried@acme.test';
    const { invitation } = await pendingInvitation(email);
    const invites = t.roster.deps.invites;
    // The email goes out, then recording it fails (a lost connection, a stop): the job tries again.
    const record = invites.recordDelivery;
    invites.recordDelivery = async () => {
      throw new Error('the connection to the database was lost');
    };
    try {
      await expect(
        deliverInvitation(t.roster.deps, invites, invitation.id, { lastAttempt: false }),
      ).rejects.toThrow('the connection to the database was lost');
    } finally {
      invites.recordDelivery = record;
    }
    await deliverInvitation(t.roster.deps, invites, invitation.id, { lastAttempt: false });

    const mails = t.smtp.messages.filter((m) => m.toText === email);
    expect(mails).toHaveLength(2);
    const [first, second] = mails.map((m) => links(m).find((l) => l.includes('/invitations/')));
    expect(first).toBeDefined();
    expect(second).toBe(first);
    const page = await fetch(first!);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Accept');
    const recorded = await t.em().findOneOrFail(Invitation, invitation.id);
    expect(recorded).toMatchObject({ deliveryMethod: 'email', deliveryAttempts: 2 });
    expect(recorded.deliveredAt).not.toBeNull();
  });
});

describe('an import batch whose invitations Roster stops trying to deliver', () => {
  it('tells the importer once for the batch, not once per invitation, and a mail server failure once a day', async () => {
    const down = ['ja.down@acme.test', 'ki.down@acme.test', 'lu.down@acme.test', 'mo.down@acme.test'];
    const typos = ['ned.typo@acme.test', 'ola.typo@acme.test'];
    for (const address of down) t.smtp.deferredRecipients.add(address);
    for (const address of typos) t.smtp.refusedRecipients.add(address);
    const batchOf = async (addresses: string[]) => {
      const ids: string[] = [];
      for (const address of addresses) ids.push((await pendingInvitation(address)).invitation.id);
      return ids;
    };
    const notices = () =>
      t.standin.messages.filter((m) => m.channel === 'DUADMIN' && textOf(m).includes('from your CSV import'));
    const before = notices().length;
    const deliver = (ids: string[]) =>
      deliverBatch(t.roster.deps, t.roster.deps.invites, ids, { lastAttempt: true });
    try {
      // The last attempt: four still greylisted, two refused for good.
      await expect(deliver(await batchOf([...down.slice(0, 3), ...typos]))).rejects.toThrow(
        '3 of 5 invitations could not be delivered yet',
      );
      const first = await eventually(() => notices()[before] ?? null);
      const text = textOf(first);
      expect(text).toContain(':warning: *5 invitations from your CSV import could not be delivered.*');
      expect(text).toContain(
        `• 2 addresses the mail server refuses for good, most often a typo: ${typos.join(', ')}. Roster did not try again.`,
      );
      expect(text).toContain(
        '• 3 invitations still failing after several hours of retries; the last error was: Email failed: the mail server did not take the recipient for now (450 4.2.0',
      );
      expect(text).toContain('A failure of the mail server is told once a day');
      // No notice of its own for any of them.
      for (const address of [...down, ...typos]) {
        expect(JSON.stringify(t.standin.messages)).not.toContain(`${address} could not be delivered`);
      }

      // Another batch the same day: its typo is told, the mail server's failure is not told again.
      t.smtp.refusedRecipients.add('pia.typo@acme.test');
      await expect(deliver(await batchOf([down[3]!, 'pia.typo@acme.test']))).rejects.toThrow(
        '1 of 2 invitations could not be delivered yet',
      );
      const second = await eventually(() => notices()[before + 1] ?? null);
      expect(textOf(second)).toContain(
        ':warning: *1 invitation from your CSV import could not be delivered.*',
      );
      expect(textOf(second)).toContain('most often a typo: pia.typo@acme.test.');
      expect(textOf(second)).not.toContain('still failing');
      // A batch failing only for the mail server says nothing more today.
      t.smtp.deferredRecipients.add('quin.down@acme.test');
      await expect(deliver(await batchOf(['quin.down@acme.test']))).rejects.toThrow();
      await new Promise((r) => setTimeout(r, 500));
      expect(notices()).toHaveLength(before + 2);
    } finally {
      t.smtp.deferredRecipients.clear();
      t.smtp.refusedRecipients.clear();
    }
    // Each is recorded as not delivered, for `/invite pending` and its Resend.
    const recorded = await t.em().find(Invitation, { user: { email: [...down, ...typos] } });
    expect(recorded).toHaveLength(6);
    for (const invitation of recorded) expect(invitation.deliveryFailedAt).toBeInstanceOf(Date);
  });
});

describe('an import batch stopped after it gave up on an invitation', () => {
  it('tells the importer on its retry, once', async () => {
    const told = () =>
      t.standin.messages.filter((m) => m.channel === 'DUADMIN' && textOf(m).includes('rex.typo@acme.test'));
    t.smtp.refusedRecipients.add('rex.typo@acme.test');
    try {
      const typo = (await pendingInvitation('rex.typo@acme.test')).invitation.id;
      const fine = (await pendingInvitation('sam.fine@acme.test')).invitation.id;
      // The batch's first delivery gives up on the mistyped address; Roster stops before the batch tells.
      await deliverInvitation(t.roster.deps, t.roster.deps.invites, typo, {
        lastAttempt: false,
        batched: true,
      });
      await jobsDrained(t.em(), { queues: [SLACK_CALL_JOB] });
      expect(told()).toEqual([]);
      // The batch's retry after the restart delivers the other one and tells of the mistyped one.
      await deliverBatch(t.roster.deps, t.roster.deps.invites, [typo, fine], { lastAttempt: false });
      const notice = await eventually(() => told()[0]);
      expect(textOf(notice)).toContain(
        ':warning: *1 invitation from your CSV import could not be delivered.*',
      );
      expect(textOf(notice)).toContain('most often a typo: rex.typo@acme.test.');
      // Once: another retry finds nothing left to tell.
      await deliverBatch(t.roster.deps, t.roster.deps.invites, [typo, fine], { lastAttempt: false });
      await jobsDrained(t.em(), { queues: [SLACK_CALL_JOB] });
      expect(told()).toHaveLength(1);
    } finally {
      t.smtp.refusedRecipients.clear();
    }
  });
});

describe('an import batch stopped after it gave up on an invitation cancelled before its retry', () => {
  it("tells nobody of it: a cancelled invitation is nobody's concern any more", async () => {
    const told = () =>
      t.standin.messages.filter((m) => m.channel === 'DUADMIN' && textOf(m).includes('zed.typo@acme.test'));
    t.smtp.refusedRecipients.add('zed.typo@acme.test');
    try {
      const { user, invitation } = await pendingInvitation('zed.typo@acme.test');
      await deliverInvitation(t.roster.deps, t.roster.deps.invites, invitation.id, {
        lastAttempt: false,
        batched: true,
      });
      await t.roster.deps.invites.cancel(
        t.em(),
        await t.account(),
        { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' },
        user.id,
      );
      expect((await t.em().findOneOrFail(Invitation, invitation.id)).status).toBe('cancelled');
      await deliverBatch(t.roster.deps, t.roster.deps.invites, [invitation.id], { lastAttempt: false });
      await jobsDrained(t.em(), { queues: [SLACK_CALL_JOB] });
      expect(told().map((m) => textOf(m))).toEqual([]);
    } finally {
      t.smtp.refusedRecipients.clear();
    }
  });
});
