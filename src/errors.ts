// Errors carry a stable code and say what the supervisor should do next (STYLE.md principle 4):
// "retry" (transient: back off and try again), "operator" (a person must act: disk, config, cabling),
// "stop" (programming or unrecoverable error).

export type NextStep = "retry" | "operator" | "stop";

export class VitalgateError extends Error {
  readonly code: string;
  readonly next: NextStep;
  constructor(code: string, message: string, next: NextStep, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "VitalgateError";
    this.code = code;
    this.next = next;
  }
}

/** The store could not accept events: the device must get a negative acknowledgement. */
export class StoreRefusedError extends VitalgateError {
  constructor(
    code: "VG_STORE_QUOTA" | "VG_STORE_DISK_FULL" | "VG_STORE_FAILED" | "VG_STORE_CLOSED",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, "operator", options);
    this.name = "StoreRefusedError";
  }
}
