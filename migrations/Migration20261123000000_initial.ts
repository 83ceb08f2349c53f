import { Migration } from '@mikro-orm/migrations';

/** Accounts, people, contacts, invitations, join links, seat requests, CSV imports and the audit trail. */
export class Migration20261123000000_initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `create table "account" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "team_id" varchar(255) not null, "name" varchar(255) null, "seat_limit" int not null default 0, "approval_channel_id" varchar(255) null, "allowed_email_domains" text[] not null default '{}', "invitation_expiry_days" int not null default 7, primary key ("id"));`,
    );
    this.addSql(`alter table "account" add constraint "account_team_id_unique" unique ("team_id");`);
    this.addSql(
      `create table "audit_event" ("id" bigserial primary key, "account_id" uuid not null, "actor" varchar(255) not null, "action" varchar(255) not null, "subject_type" varchar(255) not null, "subject_id" varchar(255) null, "surface" text not null, "data" jsonb not null default '{}', "created_at" timestamptz not null default now());`,
    );
    this.addSql(
      `alter table "audit_event" add constraint "audit_event_surface_check" check ("surface" in ('slack', 'web', 'job', 'system'));`,
    );
    this.addSql(
      `create table "csv_import" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "account_id" uuid not null, "uploaded_by" varchar(255) not null, "file_name" varchar(255) not null, "file_id" varchar(255) null, "file_sha256" varchar(255) not null, "status" text not null default 'previewed', "counts" jsonb not null default '{}', "channel_id" varchar(255) null, "message_ts" varchar(255) null, "finished_at" timestamptz null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "csv_import" add constraint "csv_import_status_check" check ("status" in ('previewed', 'importing', 'completed', 'cancelled', 'failed'));`,
    );
    this.addSql(
      `create table "csv_import_row" ("id" bigserial primary key, "csv_import_id" uuid not null, "line" int not null, "data" jsonb not null, "outcome" text not null, "error" text null, "applied_at" timestamptz null);`,
    );
    this.addSql(
      `alter table "csv_import_row" add constraint "csv_import_row_outcome_check" check ("outcome" in ('create', 'update', 'unchanged', 'error'));`,
    );
    this.addSql(
      `create table "join_link" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "account_id" uuid not null, "token_hash" varchar(255) not null, "role" text not null default 'employee', "expires_at" timestamptz not null, "max_uses" int null, "uses" int not null default 0, "allowed_email_domains" text[] not null default '{}', "revoked_at" timestamptz null, "revoked_by" varchar(255) null, "created_by" varchar(255) not null, "channel_id" varchar(255) null, "message_ts" varchar(255) null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "join_link" add constraint "join_link_token_hash_unique" unique ("token_hash");`,
    );
    this.addSql(
      `alter table "join_link" add constraint "join_link_role_check" check ("role" in ('employee', 'contractor', 'client'));`,
    );
    this.addSql(
      `create table "permission_set" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "account_id" uuid not null, "name" varchar(255) not null, "is_admin" boolean not null default false, primary key ("id"));`,
    );
    this.addSql(
      `create table "slack_installation" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "team_id" varchar(255) not null, "team_name" varchar(255) null, "enterprise_id" varchar(255) null, "app_id" varchar(255) null, "bot_user_id" varchar(255) not null, "bot_id" varchar(255) null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "slack_installation" add constraint "slack_installation_team_id_unique" unique ("team_id");`,
    );
    this.addSql(
      `create table "app_user" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "account_id" uuid not null, "email" varchar(255) not null, "first_name" varchar(255) null, "last_name" varchar(255) null, "title" varchar(255) null, "phone" varchar(255) null, "role" text not null, "status" text not null, "permission_set_id" uuid null, "slack_user_id" varchar(255) null, "added_by" varchar(255) null, "deactivated_at" timestamptz null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "app_user" add constraint "app_user_role_check" check ("role" in ('employee', 'contractor', 'client'));`,
    );
    this.addSql(
      `alter table "app_user" add constraint "app_user_status_check" check ("status" in ('locked', 'not_invited', 'invited', 'active', 'deactivated'));`,
    );
    this.addSql(
      `create table "seat_request" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "account_id" uuid not null, "kind" text not null, "status" text not null default 'pending', "email" varchar(255) not null, "name" varchar(255) null, "role" text not null, "permission_set_id" uuid null, "user_id" uuid null, "requested_by" varchar(255) not null, "payload" jsonb not null default '{}', "decided_by" varchar(255) null, "decided_at" timestamptz null, "reason" text null, "expires_at" timestamptz not null, "messages" jsonb not null default '[]', primary key ("id"));`,
    );
    this.addSql(
      `alter table "seat_request" add constraint "seat_request_kind_check" check ("kind" in ('invite', 'convert', 'join', 'import', 'unlock', 'reactivate', 'role_change'));`,
    );
    this.addSql(
      `alter table "seat_request" add constraint "seat_request_status_check" check ("status" in ('pending', 'approved', 'rejected', 'expired'));`,
    );
    this.addSql(
      `alter table "seat_request" add constraint "seat_request_role_check" check ("role" in ('employee', 'contractor', 'client'));`,
    );
    this.addSql(
      `create table "invitation" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "account_id" uuid not null, "user_id" uuid not null, "token_hash" varchar(255) not null, "status" text not null default 'pending', "expires_at" timestamptz not null, "invited_by" varchar(255) null, "personal_message" text null, "delivery_method" text null, "delivered_at" timestamptz null, "delivery_attempts" int not null default 0, "last_error" text null, "accepted_at" timestamptz null, "cancelled_at" timestamptz null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "invitation" add constraint "invitation_token_hash_unique" unique ("token_hash");`,
    );
    this.addSql(
      `alter table "invitation" add constraint "invitation_status_check" check ("status" in ('pending', 'accepted', 'cancelled', 'superseded'));`,
    );
    this.addSql(
      `alter table "invitation" add constraint "invitation_delivery_method_check" check ("delivery_method" in ('slack_dm', 'email'));`,
    );
    this.addSql(
      `create table "contact" ("id" uuid not null, "created_at" timestamptz not null default now(), "updated_at" timestamptz not null default now(), "account_id" uuid not null, "name" varchar(255) not null, "email" varchar(255) null, "phone" varchar(255) null, "company" varchar(255) null, "title" varchar(255) null, "notes" text null, "user_id" uuid null, "added_by" varchar(255) null, primary key ("id"));`,
    );
    this.addSql(
      `alter table "audit_event" add constraint "audit_event_account_id_foreign" foreign key ("account_id") references "account" ("id");`,
    );
    this.addSql(
      `alter table "csv_import" add constraint "csv_import_account_id_foreign" foreign key ("account_id") references "account" ("id");`,
    );
    this.addSql(
      `alter table "csv_import_row" add constraint "csv_import_row_csv_import_id_foreign" foreign key ("csv_import_id") references "csv_import" ("id");`,
    );
    this.addSql(
      `alter table "join_link" add constraint "join_link_account_id_foreign" foreign key ("account_id") references "account" ("id");`,
    );
    this.addSql(
      `alter table "permission_set" add constraint "permission_set_account_id_foreign" foreign key ("account_id") references "account" ("id");`,
    );
    this.addSql(
      `alter table "app_user" add constraint "app_user_account_id_foreign" foreign key ("account_id") references "account" ("id");`,
    );
    this.addSql(
      `alter table "app_user" add constraint "app_user_permission_set_id_foreign" foreign key ("permission_set_id") references "permission_set" ("id") on delete set null;`,
    );
    this.addSql(
      `alter table "seat_request" add constraint "seat_request_account_id_foreign" foreign key ("account_id") references "account" ("id");`,
    );
    this.addSql(
      `alter table "seat_request" add constraint "seat_request_permission_set_id_foreign" foreign key ("permission_set_id") references "permission_set" ("id") on delete set null;`,
    );
    this.addSql(
      `alter table "seat_request" add constraint "seat_request_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on delete set null;`,
    );
    this.addSql(
      `alter table "invitation" add constraint "invitation_account_id_foreign" foreign key ("account_id") references "account" ("id");`,
    );
    this.addSql(
      `alter table "invitation" add constraint "invitation_user_id_foreign" foreign key ("user_id") references "app_user" ("id");`,
    );
    this.addSql(
      `alter table "contact" add constraint "contact_account_id_foreign" foreign key ("account_id") references "account" ("id");`,
    );
    this.addSql(
      `alter table "contact" add constraint "contact_user_id_foreign" foreign key ("user_id") references "app_user" ("id") on delete set null;`,
    );
    this.addSql(`alter table "account" add constraint "account_seat_limit_check" check ("seat_limit" >= 0);`);
    this.addSql(
      `alter table "account" add constraint "account_invitation_expiry_days_check" check ("invitation_expiry_days" between 1 and 365);`,
    );
    this.addSql(
      `create unique index "permission_set_account_name_unique" on "permission_set" ("account_id", lower("name"));`,
    );
    this.addSql(
      `alter table "app_user" add constraint "app_user_email_check" check ("email" = btrim("email") and "email" <> '');`,
    );
    this.addSql(
      `create unique index "app_user_account_email_unique" on "app_user" ("account_id", lower(btrim("email")));`,
    );
    this.addSql(
      `create unique index "app_user_account_slack_user_unique" on "app_user" ("account_id", "slack_user_id") where "slack_user_id" is not null;`,
    );
    this.addSql(`create index "app_user_account_status_index" on "app_user" ("account_id", "status");`);
    this.addSql(
      `alter table "contact" add constraint "contact_email_check" check ("email" is null or ("email" = btrim("email") and "email" <> ''));`,
    );
    this.addSql(
      `create unique index "contact_account_email_unique" on "contact" ("account_id", lower(btrim("email"))) where "email" is not null;`,
    );
    this.addSql(
      `alter table "invitation" add constraint "invitation_token_hash_check" check ("token_hash" ~ '^[0-9a-f]{64}$');`,
    );
    this.addSql(
      `create unique index "invitation_one_pending_per_user" on "invitation" ("user_id") where "status" = 'pending';`,
    );
    this.addSql(
      `alter table "join_link" add constraint "join_link_token_hash_check" check ("token_hash" ~ '^[0-9a-f]{64}$');`,
    );
    this.addSql(
      `alter table "join_link" add constraint "join_link_uses_check" check ("uses" >= 0 and ("max_uses" is null or "uses" <= "max_uses"));`,
    );
    this.addSql(
      `alter table "join_link" add constraint "join_link_max_uses_check" check ("max_uses" is null or "max_uses" > 0);`,
    );
    this.addSql(
      `create unique index "seat_request_one_pending_per_email" on "seat_request" ("account_id", lower(btrim("email"))) where "status" = 'pending';`,
    );
    this.addSql(
      `create index "seat_request_account_status_index" on "seat_request" ("account_id", "status");`,
    );
    this.addSql(
      `create unique index "csv_import_row_line_unique" on "csv_import_row" ("csv_import_id", "line");`,
    );
    this.addSql(
      `create index "audit_event_account_created_index" on "audit_event" ("account_id", "created_at");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "contact" cascade;`);
    this.addSql(`drop table if exists "invitation" cascade;`);
    this.addSql(`drop table if exists "seat_request" cascade;`);
    this.addSql(`drop table if exists "app_user" cascade;`);
    this.addSql(`drop table if exists "slack_installation" cascade;`);
    this.addSql(`drop table if exists "permission_set" cascade;`);
    this.addSql(`drop table if exists "join_link" cascade;`);
    this.addSql(`drop table if exists "csv_import_row" cascade;`);
    this.addSql(`drop table if exists "csv_import" cascade;`);
    this.addSql(`drop table if exists "audit_event" cascade;`);
    this.addSql(`drop table if exists "account" cascade;`);
  }
}
