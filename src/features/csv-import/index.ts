import type { Deps, Feature } from '../feature.ts';
import { registerCsvImportJobs } from './csv-import.jobs.ts';
import { registerImportActions } from './slack/import.actions.ts';
import { registerImportShortcut } from './slack/import.shortcut.ts';
import { registerUploadEvent } from './slack/upload.event.ts';

/** The import service of a running app. */
export const csvImports = (deps: Deps) => deps.csvImports;

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
