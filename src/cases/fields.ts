// A case's fields as the page, the center and the events carry them: checked the same way wherever
// they come from (the case book, the center's commands, the event schemas).
import { z } from "zod";

/** A case id as the center may give it, and as the box makes them (`20261123-0007`). */
export const CASE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export const caseId = () =>
  z.string().regex(CASE_ID_PATTERN, {
    message: "must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
  });
/** Where a case applies: a device location (a bed, a room), or "" for the whole box (an ambulance has one). */
export const caseLocation = () =>
  z
    .string()
    .max(100)
    .regex(/^[^\p{Cc}]*$/u, { message: "must not contain control characters" });
/** A patient id as typed or scanned (a wristband barcode, an ID card number). */
export const patientId = () =>
  z
    .string()
    .min(1)
    .max(64)
    .regex(/^[^\p{Cc}]+$/u, { message: "must not contain control characters" });
