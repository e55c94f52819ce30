// What the core tells a driver (and a sender detection) about the moment a frame is handled.

/**
 * What the core tells a driver about the moment a frame is handled. Drivers read no clock of their
 * own (they stay pure and testable); replies that carry a time (HL7 MSH-7) take it from here.
 */
export interface FrameContext {
  /** The gateway's synchronized time, Unix ms. */
  nowMs: number;
  /**
   * The box's configured time zone (`time.zone`: an IANA name or a UTC offset), for device times
   * sent without an offset when the device has no zone of its own.
   */
  timeZone?: string;
  /**
   * The frames are a recording played back (`vitalgate decode`), not a live device: drivers that
   * thin out what they emit (throttled GPS positions) emit everything.
   */
  replay?: boolean;
}
