// Errors carry a stable code, and what comes next (STYLE.md principle 4) is the code's, from the
// catalog (src/error-catalog.ts): "retry" (transient: back off and try again), "operator" (a person
// must act: disk, config, cabling), "stop" (programming or unrecoverable error).
import { CODES, type Code, type NextStep } from "./error-catalog.ts";

export type { Code, NextStep };

/** The codes of failures: those the catalog gives a next step. */
export type FailureCode = { [K in Code]: (typeof CODES)[K] extends { next: NextStep } ? K : never }[Code];

export class VitalgateError extends Error {
  readonly code: FailureCode;
  readonly next: NextStep;
  constructor(code: FailureCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "VitalgateError";
    this.code = code;
    this.next = CODES[code].next;
  }
}

/** The store could not accept events: the device must get a negative acknowledgement. */
export class StoreRefusedError extends VitalgateError {
  constructor(
    code: "VG_STORE_QUOTA" | "VG_STORE_DISK_FULL" | "VG_STORE_FAILED" | "VG_STORE_CLOSED",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = "StoreRefusedError";
  }
}
