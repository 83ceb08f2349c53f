import type { Deps, Feature } from '../feature.ts';
import { registerCsvImportJobs } from './csv-import.jobs.ts';
import { registerImportActions } from './slack/actions.ts';
import { registerUploadEvent } from './slack/events.ts';
import { registerImportShortcut } from './slack/shortcuts.ts';
import { registerImportForm } from './slack/views.ts';

/** The import service of a running app. */
export const csvImports = (deps: Deps) => deps.csvImports;

/** CSV import: a file dropped in the bot's DM or chosen in the shortcut's modal, previewed, then imported. */
export const csvImportFeature: Feature = {
  name: 'csv-import',
  jobs: (deps) => registerCsvImportJobs(deps, csvImports(deps)),
  slack(app, deps) {
    const service = csvImports(deps);
    registerUploadEvent(app, deps, service);
    registerImportShortcut(app, deps);
    registerImportForm(app, deps, service);
    registerImportActions(app, deps, service);
  },
};
