import { initORM, type ORM } from '../../../src/db/orm.ts';
import type { IAccount } from '../../../src/features/accounts/account.entity.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import { Contact } from '../../../src/features/contacts/contact.entity.ts';
import type { SearchHit } from '../../../src/features/contacts/contact.search.ts';
import { ContactService } from '../../../src/features/contacts/contact.service.ts';
import { User } from '../../../src/features/people/user.entity.ts';
import { SeatService } from '../../../src/features/seats/seat.service.ts';
import type { JobQueue } from '../../../src/shared/jobs.ts';
import { createTestDatabase, type TestDatabase } from '../../support/database.ts';

let db: TestDatabase;
let orm: ORM;
let contacts: ContactService;
let account: IAccount;
let other: IAccount;

beforeAll(async () => {
  db = await createTestDatabase();
  orm = await initORM(db.url);
  // Finding touches neither seats nor jobs.
  contacts = new ContactService(new SeatService({} as JobQueue), {} as JobQueue);
  const em = orm.em.fork();
  account = await ensureAccount(em, 'T_FIND');
  other = await ensureAccount(em, 'T_OTHER');
  const contact = (a: IAccount, name: string, email: string | null, company: string | null = null) =>
    em.create(Contact, { account: a, name, email, company });
  contact(account, 'Ana Lee', 'ana@supplier.test', 'Supplier Ltd');
  contact(account, 'Ana Maria Lopez', 'amlopez@other.test', 'Leeward Shipping');
  contact(account, 'Bob Stone', 'leeroy@stone.test');
  contact(account, 'Percent 100%', 'pct@x.test');
  contact(account, 'abc', null, 'a_b Corp');
  contact(account, 'abd', null, 'axb Corp');
  contact(other, 'Ana Elsewhere', 'ana@elsewhere.test', 'Lee Industries');
  for (let i = 0; i < 37; i++) {
    // Names, emails and companies all start with "mix": each contact matches three ways.
    contact(account, `Mix ${String(i).padStart(2, '0')}`, `mix${i}@bulk.test`, `Mixers ${i % 4}`);
  }
  em.create(User, {
    account,
    email: 'leela@acme.test',
    firstName: 'Leela',
    lastName: 'Kay',
    role: 'client',
    status: 'active',
  });
  em.create(User, { account, email: 'nameless@acme.test', role: 'client', status: 'invited' });
  em.create(User, {
    account: other,
    email: 'lee@other.test',
    firstName: 'Lee',
    role: 'client',
    status: 'active',
  });
  await em.flush();
});
afterAll(async () => {
  await orm.close(true);
  await db.drop();
});

const names = (hits: SearchHit[]) => hits.map((h) => `${h.kind}:${h.name}`);
const find = (text: string, offset = 0) => contacts.find(orm.em.fork(), account, text, offset);

describe('finding contacts and users', () => {
  it('matches the start of a name, a surname, an email or a company, whatever the case, in this account only', async () => {
    const { hits, more } = await find('LEE');
    expect(more).toBe(false);
    // Ordered by what matched: "lee" (surname), "leela kay" (user), "leeroy@" (email), "leeward" (company).
    expect(names(hits)).toEqual([
      'contact:Ana Lee',
      'user:Leela Kay',
      'contact:Bob Stone',
      'contact:Ana Maria Lopez',
    ]);
    expect(hits[0]).toMatchObject({ email: 'ana@supplier.test', company: 'Supplier Ltd', convertedTo: null });
  });

  it('lists a contact that matches several ways once', async () => {
    const { hits } = await find('ana');
    expect(names(hits)).toEqual(['contact:Ana Lee', 'contact:Ana Maria Lopez']);
  });

  it('finds users by first name, surname and email, and shows a nameless user by email', async () => {
    expect(names((await find('kay')).hits)).toEqual(['user:Leela Kay']);
    const { hits } = await find('nameless');
    expect(hits).toEqual([
      {
        kind: 'user',
        id: expect.any(String),
        name: 'nameless@acme.test',
        email: 'nameless@acme.test',
        company: null,
        status: 'invited',
        role: 'client',
        addedBy: null,
      },
    ]);
  });

  it('pages through many matches ten at a time, each exactly once, in order', async () => {
    const seen: string[] = [];
    let offset = 0;
    let pages = 0;
    for (;;) {
      const { hits, more } = await find('mix', offset);
      pages++;
      expect(hits.length).toBeLessThanOrEqual(10);
      seen.push(...hits.map((h) => h.name));
      offset += hits.length;
      if (!more) break;
    }
    expect(pages).toBe(4);
    expect(seen).toHaveLength(37);
    expect(seen).toEqual(Array.from({ length: 37 }, (_, i) => `Mix ${String(i).padStart(2, '0')}`));
  });

  it('reads spaces typed twice, or a tab, as one space between the words of a name', async () => {
    expect(names((await find('ana  lee')).hits)).toEqual(['contact:Ana Lee']);
    expect(names((await find('leela\tkay')).hits)).toEqual(['user:Leela Kay']);
  });

  it('takes % and _ literally', async () => {
    expect(names((await find('a_')).hits)).toEqual(['contact:abc']);
    expect(names((await find('percent 100%')).hits)).toEqual(['contact:Percent 100%']);
    expect((await find('%')).hits).toEqual([]);
    expect((await find('_')).hits).toEqual([]);
  });
});
