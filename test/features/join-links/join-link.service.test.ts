import { initORM, type ORM } from '../../../src/db/orm.ts';
import type { IAccount } from '../../../src/features/accounts/account.entity.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { AuditEvent } from '../../../src/features/audit/audit-event.entity.ts';
import { JoinConfirmation, JoinLink } from '../../../src/features/join-links/join-link.entity.ts';
import {
  type CreateInput,
  JOIN_JOBS,
  JoinLinkService,
} from '../../../src/features/join-links/join-link.service.ts';
import { SharedRateLimiter } from '../../../src/features/join-links/web/rate-limit.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { type Actor, SEAT_JOBS, SeatService } from '../../../src/features/seats/seat.service.ts';
import { SeatRequest } from '../../../src/features/seats/seat-request.entity.ts';
import { DomainError } from '../../../src/shared/errors.ts';
import { hashToken, newToken } from '../../../src/shared/ids.ts';
import { JobQueue } from '../../../src/shared/jobs.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { jobsDrained } from '../../support/app.ts';
import { createTestDatabase, type TestDatabase } from '../../support/database.ts';

let db: TestDatabase;
let orm: ORM;
let jobs: JobQueue;
let seats: SeatService;
let links: JoinLinkService;
let clock = new Date();
const refreshed: string[] = [];

const admin: Actor = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' };
const input = (over: Partial<CreateInput> = {}): CreateInput => ({
  role: 'employee',
  expiryDays: 30,
  maxUses: null,
  allowedDomains: [],
  channelId: 'CGENERAL',
  ...over,
});

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
  jobs = await JobQueue.start(db.url, createLogger('silent'));
  await jobs.define(SEAT_JOBS.postRequest, async () => {});
  await jobs.define(SEAT_JOBS.requestDecided, async () => {});
  await jobs.define(JOIN_JOBS.sendConfirmation, async () => {});
  await jobs.define<{ linkId: string }>(JOIN_JOBS.refreshMessage, async (d) => void refreshed.push(d.linkId));
  seats = new SeatService(jobs, () => clock);
  links = new JoinLinkService(seats, jobs, { now: () => clock, isAdmin: async () => true });
  seats.register('join', links.seatFlow());
});
afterAll(async () => {
  await jobs.stop();
  await orm.close(true);
  await db.drop();
});

let n = 0;
async function freshAccount(limit = 1000): Promise<IAccount> {
  const em = orm.em.fork();
  const account = await ensureAccount(em, `T_JOIN_${++n}`);
  await em.getConnection().execute('update account set seat_limit = ? where id = ?', [limit, account.id]);
  return account;
}

async function newLink(account: IAccount, over: Partial<CreateInput> = {}) {
  let token = '';
  const link = await links.create(orm.em.fork(), account, admin, input(over), async (_link, t) => {
    token = t;
    return { channel: 'CGENERAL', ts: `${Date.now()}.000100` };
  });
  return { link, token };
}

const join = (linkId: string, email: string, slackUserId: string | null = null) =>
  links.join(orm.em.fork(), linkId, { email, name: 'Some One', slackUserId }, slackUserId ? 'slack' : 'web');

describe('JoinLinkService', () => {
  it('lets only admins create links, and keeps nothing when the message cannot be posted', async () => {
    const account = await freshAccount();
    await expect(
      links.create(orm.em.fork(), account, { ...admin, isAdmin: false }, input(), async () => ({
        channel: 'C',
        ts: '1',
      })),
    ).rejects.toMatchObject({ code: 'not_admin' });
    await expect(
      links.create(orm.em.fork(), account, admin, input(), async () => {
        throw Object.assign(new Error('An API error occurred: not_in_channel'), {
          data: { error: 'not_in_channel' },
        });
      }),
    ).rejects.toThrow('not_in_channel');
    expect(await orm.em.fork().count(JoinLink, { account })).toBe(0);
    expect(await orm.em.fork().count(AuditEvent, { account })).toBe(0);
  });

  it('stores the hash of the token it hands to the poster, never the token', async () => {
    const account = await freshAccount();
    const { link, token } = await newLink(account);
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const row = await orm.em.fork().findOneOrFail(JoinLink, link.id);
    expect(row.tokenHash).toBe(hashToken(token));
    expect(await links.findUsable(orm.em.fork(), token)).toMatchObject({ id: link.id });
    expect(await links.findUsable(orm.em.fork(), newToken().token)).toBeNull();
    expect(await links.findUsable(orm.em.fork(), row.tokenHash)).toBeNull();
  });

  it('counts a waiting seat request as a use, so approvals never take a link past its maximum', async () => {
    const account = await freshAccount(0);
    const { link } = await newLink(account, { maxUses: 2 });
    expect((await join(link.id, 'a@x.test', 'UA')).status).toBe('requested');
    expect((await join(link.id, 'b@x.test', 'UB')).status).toBe('requested');
    expect((await join(link.id, 'c@x.test', 'UC')).status).toBe('link_full');
    expect((await orm.em.fork().findOneOrFail(JoinLink, link.id)).uses).toBe(2);
    expect(await orm.em.fork().count(SeatRequest, { account, kind: 'join' })).toBe(2);
    // The full link's message is redrawn by a job: look once it has run.
    await jobsDrained(orm.em, { queues: [JOIN_JOBS.refreshMessage] });
    expect(refreshed).toContain(link.id);
  });

  it('joins the same person once when they click twice at the same moment', async () => {
    const account = await freshAccount();
    const { link } = await newLink(account);
    const results = await Promise.all([
      join(link.id, 'twice@x.test', 'UTWICE'),
      join(link.id, 'Twice@X.test ', 'UTWICE'),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['exists', 'joined']);
    expect(await orm.em.fork().count(User, { account })).toBe(1);
    expect((await orm.em.fork().findOneOrFail(JoinLink, link.id)).uses).toBe(1);
  });

  it('admits any domain when neither the link nor the account names one, else only theirs', async () => {
    const account = await freshAccount();
    const open = await newLink(account);
    expect((await join(open.link.id, 'anyone@elsewhere.test')).status).toBe('joined');
    await orm.em
      .fork()
      .getConnection()
      .execute(`update account set allowed_email_domains = '{acme.test}' where id = ?`, [account.id]);
    // The account's domains apply to a link with none of its own, posted before they were set.
    expect(await join(open.link.id, 'late@elsewhere.test')).toEqual({
      status: 'domain_not_allowed',
      allowed: ['acme.test'],
    });
    const closed = await newLink(account, { allowedDomains: ['acme.test'] });
    expect(await join(closed.link.id, 'other@elsewhere.test')).toEqual({
      status: 'domain_not_allowed',
      allowed: ['acme.test'],
    });
    expect((await join(closed.link.id, 'Someone@ACME.test')).status).toBe('joined');
  });

  it('uses a confirmation once, and only before it expires', async () => {
    const account = await freshAccount();
    const { link } = await newLink(account);
    const confirmToken = async (email: string) => {
      await links.requestConfirmation(orm.em.fork(), link, { email, name: 'Web Person' });
      const row = await orm.em.fork().findOneOrFail(JoinConfirmation, { email });
      const ready = await links.prepareConfirmation(orm.em.fork(), row.id);
      return ready!.token;
    };
    const token = await confirmToken('web@x.test');
    // Looking a confirmation up, as its page does, uses nothing.
    expect(await links.findConfirmation(orm.em.fork(), token)).toMatchObject({ email: 'web@x.test' });
    expect(await links.findConfirmation(orm.em.fork(), token)).not.toBeNull();
    expect(await orm.em.fork().findOne(User, { email: 'web@x.test' })).toBeNull();
    expect((await links.confirm(orm.em.fork(), token)).status).toBe('joined');
    // Used once, it answers like an unknown token.
    expect((await links.confirm(orm.em.fork(), token)).status).toBe('link_invalid');
    expect(await links.findConfirmation(orm.em.fork(), token)).toBeNull();
    expect((await orm.em.fork().findOneOrFail(JoinLink, link.id)).uses).toBe(1);

    const late = await confirmToken('late@x.test');
    clock = new Date(Date.now() + 25 * 3_600_000);
    try {
      expect(await links.findConfirmation(orm.em.fork(), late)).toBeNull();
      expect((await links.confirm(orm.em.fork(), late)).status).toBe('link_invalid');
    } finally {
      clock = new Date();
    }
    expect(await orm.em.fork().findOne(User, { email: 'late@x.test' })).toBeNull();
    expect((await links.confirm(orm.em.fork(), 'not-a-token')).status).toBe('link_invalid');
  });

  it('keeps the name of a corrected submission while the first email is unsent, and saves the confirmed one', async () => {
    const account = await freshAccount();
    const { link } = await newLink(account);
    const email = 'retyped@x.test';
    expect(await links.requestConfirmation(orm.em.fork(), link, { email, name: 'Rita Typo' })).toBe('queued');
    expect(await links.requestConfirmation(orm.em.fork(), link, { email, name: ' Rita Right ' })).toBe(
      'pending',
    );
    const rows = await orm.em.fork().find(JoinConfirmation, { email });
    expect(rows.map((r) => r.name)).toEqual(['Rita Right']);
    const token = (await links.prepareConfirmation(orm.em.fork(), rows[0]!.id))!.token;
    expect(await links.findConfirmation(orm.em.fork(), token)).toMatchObject({ email, name: 'Rita Right' });
    // The name the Confirm page shows may be corrected again there: that one is saved.
    expect((await links.confirm(orm.em.fork(), token, { name: 'Rita Final-Name' })).status).toBe('joined');
    expect(await orm.em.fork().findOneOrFail(User, { email })).toMatchObject({
      firstName: 'Rita',
      lastName: 'Final-Name',
    });
  });

  it('sends no confirmation for a link revoked before the email could go out', async () => {
    const account = await freshAccount();
    const { link } = await newLink(account);
    await links.requestConfirmation(orm.em.fork(), link, { email: 'slow@x.test', name: 'Slow' });
    await links.revoke(orm.em.fork(), account, admin, link.id);
    const row = await orm.em.fork().findOneOrFail(JoinConfirmation, { email: 'slow@x.test' });
    expect(await links.prepareConfirmation(orm.em.fork(), row.id)).toBeNull();
  });

  it('takes no second pool connection for its rate limit, so a burst of submissions cannot hold every one', async () => {
    const account = await freshAccount();
    const { link } = await newLink(account);
    const limiter = new SharedRateLimiter(orm.em);
    // More submissions at once than the pool has connections (10), each checked against the link's limit.
    const burst = Array.from({ length: 14 }, (_, i) =>
      links.requestConfirmation(orm.em.fork(), link, { email: `burst${i}@x.test`, name: 'Burst' }, (tx) =>
        limiter.allow(`link:${link.id}`, 100, tx),
      ),
    );
    let timer: NodeJS.Timeout | undefined;
    const stuck = new Promise((_, fail) => {
      timer = setTimeout(() => fail(new Error('the submissions hung')), 10_000);
    });
    const outcomes = await Promise.race([Promise.all(burst), stuck]).finally(() => clearTimeout(timer));
    expect(outcomes).toEqual(Array(14).fill('queued'));
  });

  it('reuses a confirmation still on its way, and emails one address at most 3 times an hour', async () => {
    const account = await freshAccount();
    const { link } = await newLink(account);
    const other = (await newLink(account)).link;
    const ask = (on: typeof link, email: string) =>
      links.requestConfirmation(orm.em.fork(), on, { email, name: 'Some One' });
    const rows = () => orm.em.fork().count(JoinConfirmation, { email: { $ilike: 'flood@x.test' } });
    const sendAll = async () => {
      for (const c of await orm.em.fork().find(JoinConfirmation, { email: { $ilike: 'flood@x.test' } }))
        await links.markSent(orm.em.fork(), c.id);
    };
    // Submitted twice at once, and again with other capitals and spaces, before the email went out.
    const firsts = await Promise.all([ask(link, 'flood@x.test'), ask(link, 'flood@x.test')]);
    expect(firsts.sort()).toEqual(['pending', 'queued']);
    expect(await ask(link, '  FLOOD@x.test ')).toBe('pending');
    expect(await rows()).toBe(1);
    await sendAll();
    expect(await ask(other, 'flood@x.test')).toBe('queued');
    await sendAll();
    expect(await ask(link, 'flood@x.test')).toBe('queued');
    await sendAll();
    expect(await ask(other, 'Flood@X.test')).toBe('address_limited');
    expect(await rows()).toBe(3);
    // Each account counts its own; an hour later, the address may have emails again.
    const elsewhere = (await newLink(await freshAccount())).link;
    expect(await ask(elsewhere, 'flood@x.test')).toBe('queued');
    clock = new Date(Date.now() + 61 * 60_000);
    try {
      expect(await ask(link, 'flood@x.test')).toBe('queued');
    } finally {
      clock = new Date();
    }
  });

  it('refuses a web join outside the link’s domains before anything is written', async () => {
    const account = await freshAccount();
    const { link } = await newLink(account, { allowedDomains: ['acme.test'] });
    const err = await links
      .requestConfirmation(orm.em.fork(), link, { email: 'x@elsewhere.test', name: 'X' })
      .catch((e) => e);
    expect(err).toBeInstanceOf(DomainError);
    expect(err).toMatchObject({ code: 'not_allowed', field: 'email' });
    expect(await orm.em.fork().count(JoinConfirmation, { email: 'x@elsewhere.test' })).toBe(0);
  });

  it('announces each expired link once, however many sweeps run at the same time', async () => {
    const account = await freshAccount();
    const expiring = await newLink(account, { expiryDays: 1 });
    const revoked = await newLink(account, { expiryDays: 1 });
    await links.revoke(orm.em.fork(), account, admin, revoked.link.id);
    clock = new Date(Date.now() + 2 * 86_400_000);
    try {
      const sweeps = await Promise.all([1, 2, 3].map(() => links.expireDue(orm.em.fork())));
      const announced = sweeps.flat().filter((l) => l.account.id === account.id);
      expect(announced.map((l) => l.id)).toEqual([expiring.link.id]);
      expect(
        await orm.em.fork().count(AuditEvent, { action: 'join_link.expired', subjectId: expiring.link.id }),
      ).toBe(1);
      expect(
        await orm.em.fork().count(AuditEvent, { action: 'join_link.expired', subjectId: revoked.link.id }),
      ).toBe(0);
      expect((await join(expiring.link.id, 'after@x.test')).status).toBe('link_invalid');
    } finally {
      clock = new Date();
    }
  });
});
