import { Account, PermissionSet, SlackInstallation } from '../features/accounts/account.entity.ts';
import { ApiToken } from '../features/api/api-token.entity.ts';
import { AuditEvent } from '../features/audit/audit-event.entity.ts';
import { Contact } from '../features/contacts/contact.entity.ts';
import { CsvImport, CsvImportRow } from '../features/csv-import/csv-import.entity.ts';
import { Invitation } from '../features/invites/invitation.entity.ts';
import { JoinConfirmation, JoinLink } from '../features/join-links/join-link.entity.ts';
import { User } from '../features/people/user.entity.ts';
import { ScimConnection, ScimSync } from '../features/scim/scim.entity.ts';
import { SeatRequest } from '../features/seats/seat-request.entity.ts';

export const entities = [
  Account,
  PermissionSet,
  SlackInstallation,
  User,
  Contact,
  Invitation,
  JoinLink,
  JoinConfirmation,
  SeatRequest,
  CsvImport,
  CsvImportRow,
  AuditEvent,
  ScimConnection,
  ScimSync,
  ApiToken,
];
