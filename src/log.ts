// One pino logger for the daemon: JSON lines to stdout for journald, pretty in a terminal.
// Every line carries context through child loggers (`device`, `case`). Patient data never reaches a
// log: drivers put none into errors, and these paths are censored should any slip into a log object.
import pino, { type Logger } from "pino";

export const REDACTED_PATHS = [
  "patient", "*.patient", "body.patient", "pid", "*.pid",
  "password", "*.password", "passwordFile", "secrets", "*.secrets",
  "payload", "*.payload", "raw", "*.raw", "frame", "*.frame",
];

export function createLogger(options: { level: string; pretty: boolean | "auto" }, destination?: pino.DestinationStream): Logger {
  const pretty = options.pretty === "auto" ? Boolean(process.stdout.isTTY) : options.pretty;
  const base: pino.LoggerOptions = {
    level: options.level,
    base: undefined,
    redact: { paths: REDACTED_PATHS, censor: "[redacted]" },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (destination) return pino(base, destination);
  if (pretty) return pino({ ...base, transport: { target: "pino-pretty", options: { translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname" } } });
  return pino(base);
}

export const silentLogger: Logger = pino({ level: "silent" });
