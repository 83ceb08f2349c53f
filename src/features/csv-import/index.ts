import type { Deps, Feature } from '../index.ts';
import { registerCsvImportJobs } from './csv-import.jobs.ts';
import { CsvImportService } from './csv-import.service.ts';
import { registerImportActions } from './slack/import.actions.ts';
import { registerImportShortcut } from './slack/import.shortcut.ts';
import { registerUploadEvent } from './slack/upload.event.ts';

const services = new WeakMap<Deps, CsvImportService>();

/** The import service of a running app: one per set of dependencies. */
export function csvImports(deps: Deps): CsvImportService {
  let service = services.get(deps);
  if (!service) {
    service = new CsvImportService({ orm: deps.orm, jobs: deps.jobs, seats: deps.seats });
    services.set(deps, service);
  }
  return service;
}

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
