import type { Feature } from '../index.ts';
import { perApp } from '../per-app.ts';
import { registerCsvImportJobs } from './csv-import.jobs.ts';
import { CsvImportService } from './csv-import.service.ts';
import { registerImportActions } from './slack/import.actions.ts';
import { registerImportShortcut } from './slack/import.shortcut.ts';
import { registerUploadEvent } from './slack/upload.event.ts';

/** The import service of a running app. */
export const csvImports = perApp(
  (deps) => new CsvImportService({ orm: deps.orm, jobs: deps.jobs, seats: deps.seats }),
);

/** CSV import: a file dropped in the bot's DM or chosen in the shortcut's modal, previewed, then imported. */
export const csvImportFeature: Feature = {
  name: 'csv-import',
  jobs: (deps) => registerCsvImportJobs(deps, csvImports(deps)),
  slack(app, deps) {
    const service = csvImports(deps);
    registerUploadEvent(app, deps, service);
    registerImportShortcut(app, deps, service);
    registerImportActions(app, deps, service);
  },
};
