// The two contracts every codec in protocols/ keeps. Pure: bytes in, messages out; no I/O, no clocks.

/** A problem with input bytes, named by a stable code and said in words a technician can act on. */
export interface CodecError {
  /** Stable, searchable code, e.g. "MLLP_OVERSIZE", "HL7_NO_MSH". */
  code: string;
  message: string;
  /** Byte offset in the stream (framers) or a location like "OBX[3]-5" (decoders), when known. */
  where?: string | number;
}

export type FrameResult = { frame: Uint8Array } | { error: CodecError };

/**
 * A stream framer: fed chunks as they arrive, split anywhere, it returns the complete frames and any
 * framing errors in stream order. It keeps what belongs to an unfinished frame for the next push.
 */
export interface Framer {
  push(chunk: Uint8Array): FrameResult[];
  /** Bytes held back, waiting for the rest of a frame. */
  readonly pending: number;
  /**
   * End of input (a capture file is read to its end): what is held, as a last frame or an error.
   * Stream framers whose frames have an explicit end need not have it: what is held is unfinished.
   */
  end?(): FrameResult[];
}
