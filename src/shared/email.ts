import { z } from 'zod';

/**
 * An email address as Roster takes one: zod's own pattern, whose last label must be letters, widened to
 * the ASCII form of an internationalised top-level domain (`.рф` is `.xn--p1ai`), which browsers send
 * and Roster keeps.
 */
export const EMAIL_PATTERN =
  /^(?:[A-Za-z0-9_'+-]+\.)*[A-Za-z0-9_'+-]*[A-Za-z0-9_+-]@(?:[A-Za-z0-9][A-Za-z0-9-]*\.)+(?:[A-Za-z]{2,}|xn--[A-Za-z0-9-]*[A-Za-z0-9])$/;

/** The schema of such an address; `error` is what a person is shown when it is not one. */
export const emailAddress = (error?: string) =>
  z.email({ pattern: EMAIL_PATTERN, ...(error ? { error } : {}) });

const anyAddress = emailAddress();

/** Whether `value` is such an address. */
export const isEmailAddress = (value: string): boolean => anyAddress.safeParse(value).success;
