import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { baseProperties } from '../../db/base.ts';
import { Account } from '../accounts/account.entity.ts';

export const CSV_IMPORT_STATUSES = [
  'reading',
  'previewed',
  'importing',
  'completed',
  'cancelled',
  'failed',
] as const;
export type CsvImportStatus = (typeof CSV_IMPORT_STATUSES)[number];
export const CSV_ROW_OUTCOMES = ['create', 'update', 'unchanged', 'error'] as const;
export type CsvRowOutcome = (typeof CSV_ROW_OUTCOMES)[number];
export const CSV_ROW_RESULTS = ['created', 'updated', 'unchanged', 'error'] as const;
export type CsvRowResult = (typeof CSV_ROW_RESULTS)[number];
export const CSV_ROW_KINDS = ['user', 'contact'] as const;
export type CsvRowKind = (typeof CSV_ROW_KINDS)[number];

/** One uploaded CSV file: its preview, then its import. */
export const CsvImport = defineEntity({
  name: 'CsvImport',
  tableName: 'csv_import',
  properties: {
    ...baseProperties,
    account: () => p.manyToOne(Account).ref(),
    uploadedBy: p.string(),
    fileName: p.string(),
    fileId: p.string().nullable(),
    fileSha256: p.string().nullable(),
    status: p.enum(CSV_IMPORT_STATUSES).default('previewed'),
    counts: p.json<Record<string, number>>().default('{}'),
    /** The header of the file as it was written, for the error file. */
    columns: p.json<string[]>().default('[]'),
    /** The separator the file was read with (a comma, a semicolon or a tab), for the error file. */
    delimiter: p.string().default(','),
    warnings: p.json<string[]>().default('[]'),
    /** Why the file as a whole was rejected. */
    error: p.text().nullable(),
    channelId: p.string().nullable(),
    /** The preview message. */
    messageTs: p.string().nullable(),
    /** The progress message, then the summary. */
    progressTs: p.string().nullable(),
    importedBy: p.string().nullable(),
    /**
     * When the preview last compared the rows with the people and contacts in Roster: it names the other
     * imports of the account applied after it (see CsvImportService.start).
     */
    previewedAt: p.datetime().nullable(),
    /**
     * The transactions that comparison could see (a pg_snapshot): a person or contact the file names,
     * written by any other since, makes the preview stale, by hand or by an import (see changedSince).
     */
    previewedSnapshot: p.string().columnType('pg_snapshot').nullable().lazy(),
    /** How many times the preview was checked again; the Import button carries it, so an older click is known. */
    previewRevision: p.integer().default(0),
    /** The revision Import queued a check of: while it is the preview's revision, the check is not done. */
    checkingRevision: p.integer().nullable(),
    startedAt: p.datetime().nullable(),
    finishedAt: p.datetime().nullable(),
    /** The id of the last row applied: every row up to it is applied, and none after it. */
    appliedThrough: p.bigint('number').defaultRaw('0'),
  },
});
export type ICsvImport = InferEntity<typeof CsvImport>;

/** One row of an import: what the preview decided for it and, where it differs, what applying it did. */
export const CsvImportRow = defineEntity({
  name: 'CsvImportRow',
  tableName: 'csv_import_row',
  properties: {
    id: p.bigint('number').primary().autoincrement(),
    /** No foreign key: the rows of a file are written in one COPY for the import just made (see the migration). */
    csvImport: () => p.manyToOne(CsvImport).ref().createForeignKeyConstraint(false),
    line: p.integer(),
    /** The row's values, checked and normalised (see RowData in csv-rows.ts). */
    data: p.json<Record<string, unknown>>(),
    /** The cells as they were in the file. */
    cells: p.json<string[]>().default('[]'),
    kind: p.enum(CSV_ROW_KINDS).nullable(),
    /** What the row is matched on: its lower-cased email, or name and company for a contact without one. */
    key: p.text().nullable(),
    /** The user or contact the preview matched. */
    targetId: p.uuid().nullable(),
    outcome: p.enum(CSV_ROW_OUTCOMES),
    error: p.text().nullable(),
    /** What applying the row did, when that differs from its outcome (an error, a row changed meanwhile). */
    result: p.enum(CSV_ROW_RESULTS).nullable(),
  },
});
export type ICsvImportRow = InferEntity<typeof CsvImportRow>;
