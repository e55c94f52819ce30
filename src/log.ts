// One pino logger for the daemon: JSON lines to stdout for journald, pretty in a terminal.
// Every line carries context through child loggers (`device`, `case`). Patient data never reaches a
// log: drivers put none into errors, and these paths are censored should any slip into a log object.
import pino, { type Logger } from "pino";

export const REDACTED_PATHS = [
  "patient",
  "*.patient",
  "body.patient",
  "pid",
  "*.pid",
  "password",
  "*.password",
  "passwordFile",
  "secrets",
  "*.secrets",
  "payload",
  "*.payload",
  "raw",
  "*.raw",
  "frame",
  "*.frame",
];

export function createLogger(
  options: { level: string; pretty: boolean | "auto" },
  destination?: pino.DestinationStream,
): Logger {
  const pretty = options.pretty === "auto" ? Boolean(process.stdout.isTTY) : options.pretty;
  const base: pino.LoggerOptions = {
    level: options.level,
    base: undefined,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (destination) return pino(base, destination);
  if (pretty)
    return pino({
      ...base,
      transport: { target: "pino-pretty", options: { translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" } },
    });
  return pino(base);
}

export const silentLogger: Logger = pino({ level: "silent" });

/**
 * One log line per condition rather than one per occurrence (a full disk refuses every message):
 * the first occurrence is logged, then at most one line per `everyMs` saying how many more there
 * were, until `clear` ends the condition.
 */
export class Conditions {
  #open = new Map<string, { loggedMs: number; more: number }>();
  readonly #nowMs: () => number;
  readonly #everyMs: number;

  constructor(nowMs: () => number, everyMs = 60_000) {
    this.#nowMs = nowMs;
    this.#everyMs = everyMs;
  }

  /**
   * An occurrence of `key`. Returns undefined when it is not to be logged; else how many occurrences
   * went unlogged before it (0 for the first, which starts the condition).
   */
  occur(key: string): number | undefined {
    const now = this.#nowMs();
    const c = this.#open.get(key);
    if (!c) {
      this.#open.set(key, { loggedMs: now, more: 0 });
      return 0;
    }
    if (now - c.loggedMs < this.#everyMs) {
      c.more++;
      return undefined;
    }
    const more = c.more;
    c.more = 0;
    c.loggedMs = now;
    return more;
  }

  has(key: string): boolean {
    return this.#open.has(key);
  }

  /** Ends the condition; returns whether it was on (its end is then worth a line). */
  clear(key: string): boolean {
    return this.#open.delete(key);
  }

  /** Ends every condition; returns whether any was on. */
  clearAll(): boolean {
    const any = this.#open.size > 0;
    this.#open.clear();
    return any;
  }
}

/**
 * Text from outside the box (a command's name from an MQTT topic, a JSON key the center sent) made
 * fit for a log line or an audit record: control characters, line and paragraph breaks, bidi and
 * zero-width formatting shown as `\u{…}` (a newline cannot forge a line, a right-to-left override
 * cannot disguise what it says), cut to `max` characters with `…`.
 */
export function outsideText(text: string, max: number): string {
  const shown = text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
  const chars = [...shown];
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : shown;
}
