import { initORM, type ORM } from '../../../src/db/orm.ts';
import type { IAccount } from '../../../src/features/accounts/account.entity.ts';
import { ensureAccount } from '../../../src/features/accounts/account.service.ts';
import {
  CSV_JOBS,
  CsvImportService,
  type PreviewSummary,
} from '../../../src/features/csv-import/csv-import.service.ts';
import { FINISH_JOB } from '../../../src/features/csv-import/import-run.ts';
import { INVITE_JOBS } from '../../../src/features/invites/invitation.service.ts';
import { type Actor, SeatService } from '../../../src/features/seats/seat.service.ts';
import { JobQueue } from '../../../src/shared/jobs.ts';
import { createLogger } from '../../../src/shared/logger.ts';
import { createTestDatabase, type TestDatabase } from '../../support/database.ts';

export const admin: Actor = { slackUserId: 'UADMIN', isAdmin: true, surface: 'slack' };

/** The CSV import service on a database of its own, as the import tests drive it without Slack. */
export type ImportTestbed = {
  db: TestDatabase;
  orm: ORM;
  jobs: JobQueue;
  seats: SeatService;
  service: CsvImportService;
  /** A new account with this seat limit. */
  freshAccount(seatLimit: number): Promise<IAccount>;
  /** Records an upload by UADMIN and previews `content` through `using` (the testbed's service by default). */
  preview(
    account: IAccount,
    content: Buffer | string | AsyncIterable<Uint8Array>,
    opts?: { name?: string; using?: CsvImportService },
  ): Promise<PreviewSummary>;
  stop(): Promise<void>;
};

/**
 * Starts the testbed. Run and delivery jobs go to `onRun` and `onDeliver` when given; otherwise runs are
 * taken and dropped (the tests run imports themselves) and deliveries stay queued, so a test can count them.
 */
export async function startImportTestbed(
  opts: { onRun?: (importId: string) => void; onDeliver?: (invitationId: string) => void } = {},
): Promise<ImportTestbed> {
  const db = await createTestDatabase();
  const orm = await initORM(db.url);
  const { onDeliver } = opts;
  // Without onDeliver, delivery jobs are queued and never worked, so a test can count them.
  const jobs = await JobQueue.start(db.url, createLogger('silent'), {
    works: (name) => Boolean(onDeliver) || name !== INVITE_JOBS.deliverBatch,
  });
  await jobs.define<{ importId: string }>(CSV_JOBS.run, async (d) => opts.onRun?.(d.importId));
  // Rechecks are taken and dropped too: the tests check previews again themselves.
  await jobs.define<{ importId: string }>(CSV_JOBS.recheck, async () => {});
  // So are summaries: the tests read a completed import's counts themselves.
  await jobs.define<{ importId: string }>(FINISH_JOB, async () => {});
  await jobs.define<{ invitationIds: string[] }>(INVITE_JOBS.deliverBatch, async (d) => {
    for (const id of d.invitationIds) onDeliver?.(id);
  });
  const seats = new SeatService(jobs);
  const service = new CsvImportService({ orm, jobs, seats });
  let n = 0;
  return {
    db,
    orm,
    jobs,
    seats,
    service,
    async freshAccount(seatLimit) {
      const em = orm.em.fork();
      const account = await ensureAccount(em, `T_CSV_${++n}`);
      await em
        .getConnection()
        .execute('update account set seat_limit = ? where id = ?', [seatLimit, account.id]);
      return account;
    },
    async preview(account, content, { name = 'people.csv', using = service } = {}) {
      const { csvImport } = await using.begin(orm.em.fork(), account, {
        uploadedBy: 'UADMIN',
        fileName: name,
        fileId: `F${++n}`,
      });
      return using.preview(csvImport.id, typeof content === 'string' ? Buffer.from(content) : content);
    },
    async stop() {
      await jobs.stop();
      await orm.close(true);
      await db.drop();
    },
  };
}
