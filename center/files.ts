// The original ECG files on the center's disk: one file per event id, at a path made from the
// gateway, the day and the id (so the same ECG, however often it arrives, is one file), written to
// a temporary name, fsynced, renamed into place and its folder fsynced: a file the database says is
// stored is on the disk.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";

const EXTENSIONS: Record<string, string> = {
  "application/dicom": ".dcm",
  "application/xml": ".xml",
  "text/xml": ".xml",
};

/** Where an event's file goes under `root`: `<gw>/<YYYY-MM-DD of t>/<eventId><ext>`. */
export function originalPath(root: string, gw: string, eventId: string, t: string, contentType: string): string {
  const safeId = eventId.replace(/[^A-Za-z0-9-]/g, "_");
  return join(root, gw, t.slice(0, 10), `${safeId}${EXTENSIONS[contentType] ?? ".bin"}`);
}

/** Writes `bytes` at `path` durably (temporary file, fsync, rename, fsync of the folder). */
export function writeDurably(path: string, bytes: Buffer): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const tmp = `${path}.part-${process.pid}`;
  const fd = openSync(tmp, "w", 0o640);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dfd = openSync(dir, "r");
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
