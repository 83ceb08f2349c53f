import type { EntityManager } from '@mikro-orm/postgresql';
import type { JobQueue } from '../../shared/jobs.ts';
import type { Logger } from '../../shared/logger.ts';
import type { IAccount } from '../accounts/account.entity.ts';
import type { Actor, SeatService, SeatUsage } from '../seats/seat.service.ts';
import type { CsvRowResult, ICsvImport } from './csv-import.entity.ts';
import type { ContactRow, UserRow } from './csv-rows.ts';

export const CSV_JOBS = {
  preview: 'csv-import.preview',
  run: 'csv-import.run',
  recheck: 'csv-import.recheck',
} as const;

/**
 * A preview to decide again, as Import queued it: the revision it moved the preview to, the imports
 * applied since it was made (`running`: one is under way), and where the preview is shown.
 */
export type RecheckJob = {
  importId: string;
  revision: number;
  after: string[];
  running: boolean;
  channel?: string;
  ts?: string;
};

/** A preview decided again, or failed because its staged rows were lost. */
export type RecheckResult =
  | { status: 'lost' }
  | {
      status: 'rechecked';
      after: string[];
      running: boolean;
      /** Other rows are in error than before: the error file posted with the preview is out of date. */
      errorsChanged: boolean;
    };

/** How many row errors a preview or a summary shows; the error file has them all. */
export const FIRST_ERRORS = 10;

/** What a user row holds once previewed: the checked values plus what the preview resolved. */
export type UserData = Omit<UserRow, 'kind' | 'permissionSet'> & {
  permissionSetId: string | null;
  seatNeeded: boolean;
  /** The role as the file gave it (null when empty); `role` is what the user will have. */
  givenRole?: string | null;
  /** The permission set the file named, resolved to its id. */
  setId?: string | null;
  /** An existing user the import will invite. */
  invite?: boolean;
};
export type ContactData = Omit<ContactRow, 'kind'>;

export type PreviewCounts = {
  rows: number;
  create: number;
  update: number;
  unchanged: number;
  error: number;
  users: number;
  contacts: number;
  /** Paid seats the import would take: invitations asked for new or locked users with a paid role. */
  seatsNeeded: number;
  invitations: number;
};

export type ResultCounts = {
  created: number;
  updated: number;
  kept: number;
  failed: number;
  /** Rows the preview found fine that ended in error while the import wrote them (`noSeat` among them). */
  failedInRun: number;
  noSeat: number;
  invited: number;
};

export type RowError = { line: number; reason: string };

export type PreviewSummary = {
  csvImport: ICsvImport;
  counts: PreviewCounts;
  seats: SeatUsage;
  warnings: string[];
  firstErrors: RowError[];
};

export type ImportSummary = {
  csvImport: ICsvImport;
  counts: PreviewCounts & ResultCounts;
  firstErrors: RowError[];
};

export type RunHooks = {
  /** Where a row the database refused is logged with the database's own words (the row says it plainly). */
  log?: Logger;
  /** Called after every batch with the rows applied so far. */
  onProgress?(done: number, total: number): void;
  /** When aborted (Roster is stopping), the run ends before its next batch, throwing HandedBack. */
  signal?: AbortSignal;
  /** Stops after this many batches, as a process that dies there would. */
  maxBatches?: number;
  /** Runs inside each batch's transaction just before it commits; throwing rolls the batch back. */
  beforeCommit?(batch: number): Promise<void> | void;
};

export type StartResult =
  | { status: 'started'; csvImport: ICsvImport }
  | { status: 'unchanged'; csvImport: ICsvImport }
  /**
   * Not started: people or contacts of the account changed after the preview, by hand or by other imports
   * (`after` names those, `running` when one is still under way; empty when none did), so the preview is
   * being decided again against the people as they are now (a job does it), to be checked before Import
   * is clicked again.
   */
  | { status: 'checking'; csvImport: ICsvImport; after: string[]; running: boolean }
  /**
   * Not started: the click was on the preview as it was before it was checked again, or (`checking`)
   * while it is being checked again.
   */
  | { status: 'outdated'; csvImport: ICsvImport; checking: boolean };

/** A staged row as a batch reads it. */
export type BatchRow = {
  id: string;
  line: number;
  kind: 'user' | 'contact';
  /** What the preview decided; rows in error are never applied. */
  outcome?: 'create' | 'update' | 'unchanged';
  /**
   * What sorts the row into its statement (`email`, `invite`, whether it has company or notes:
   * `detailed`; for a row asking for an invitation `sendInvitation` and `role`); the statements read
   * its values from the staged row.
   */
  data: Record<string, any>;
};
/** What applying one row did. */
export type Applied = { result: CsvRowResult; error?: string; invited?: boolean };
/** Everything a batch's statements need. */
export type ApplyContext = {
  tx: EntityManager;
  account: IAccount;
  actor: Actor;
  importId: string;
  jobs: JobQueue;
  seats: SeatService;
  /**
   * The seats free after the import's last batch that took seats, counted under the seat lock: the
   * next batch trusts it instead of counting again before it writes (the count under the lock before
   * its commit still decides). Null until a batch has counted.
   */
  seatsFree: { value: number | null };
  /** Where a row the database refused is logged with the database's own words. */
  log?: Logger;
};
