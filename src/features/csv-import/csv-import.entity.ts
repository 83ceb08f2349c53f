import { defineEntity, type InferEntity, p } from '@mikro-orm/core';
import { baseProperties } from '../../db/base.ts';
import { Account } from '../accounts/account.entity.ts';

export const CSV_IMPORT_STATUSES = ['previewed', 'importing', 'completed', 'cancelled', 'failed'] as const;
export type CsvImportStatus = (typeof CSV_IMPORT_STATUSES)[number];
export const CSV_ROW_OUTCOMES = ['create', 'update', 'unchanged', 'error'] as const;
export type CsvRowOutcome = (typeof CSV_ROW_OUTCOMES)[number];

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
    fileSha256: p.string(),
    status: p.enum(CSV_IMPORT_STATUSES).default('previewed'),
    counts: p.json<Record<string, number>>().default('{}'),
    channelId: p.string().nullable(),
    messageTs: p.string().nullable(),
    finishedAt: p.datetime().nullable(),
  },
});
export type ICsvImport = InferEntity<typeof CsvImport>;

/** One row of an import: what the preview decided for it and whether it has been applied. */
export const CsvImportRow = defineEntity({
  name: 'CsvImportRow',
  tableName: 'csv_import_row',
  properties: {
    id: p.bigint('number').primary().autoincrement(),
    csvImport: () => p.manyToOne(CsvImport).ref(),
    line: p.integer(),
    data: p.json<Record<string, string>>(),
    outcome: p.enum(CSV_ROW_OUTCOMES),
    error: p.text().nullable(),
    appliedAt: p.datetime().nullable(),
  },
});
export type ICsvImportRow = InferEntity<typeof CsvImportRow>;
