/** A pairing request that cannot be done, with the HTTP status the web page gets and the field at fault. */
export class PairingError extends Error {
  readonly code: string;
  readonly status: number;
  readonly field?: string;

  constructor(code: string, message: string, status = 400, field?: string) {
    super(message);
    this.name = "PairingError";
    this.code = code;
    this.status = status;
    if (field !== undefined) this.field = field;
  }
}
