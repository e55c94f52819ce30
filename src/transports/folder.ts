// The watched-folder transport: a folder a device drops files into, each complete file one message,
// moved to done/ once committed or to rejected/ with the reason.
import { createHash } from "node:crypto";
import { constants, mkdirSync, renameSync, statSync, writeFileSync } from "node:fs";
import { mkdir, open, opendir, realpath, stat } from "node:fs/promises";
import { join } from "node:path";
import type { TransportSpec } from "../devices/driver.ts";
import type { Transport } from "./transport.ts";
import { TransportError, folderError } from "./transport-errors.ts";
import { pseudoFilesystem } from "./watched-folders.ts";

/** Names a writer is still busy with: hidden files, and the temporary names carts and copiers use. */
const UNFINISHED = /^[.~]|\.(tmp|part|partial|crdownload|filepart)$/i;
/**
 * Most entries of a folder looked at in one scan: a folder holding more is worked through as files
 * leave it for done/ or rejected/ (said once in the device's state).
 */
export const MAX_FOLDER_ENTRIES = 1000;
/** Default for a folder spec's `maxSettleMs`: a file still changing after this long is set aside. */
const MAX_SETTLE_MS = 600_000;
/** Bytes read at a time from a file; between reads the event loop serves everyone else. */
const READ_CHUNK = 1 << 20;

/** A watched file's bytes and their hash, read in chunks; `undefined` when it holds more than `maxBytes`. */
async function readBounded(path: string, maxBytes: number): Promise<{ bytes: Buffer; sha256: string } | undefined> {
  // O_NONBLOCK: a special file that slipped in (a FIFO made between scan and open) never blocks a read;
  // O_NOFOLLOW: a name swapped for a symlink since the scan is not followed out of the folder.
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  try {
    if (!(await file.stat()).isFile()) throw new Error("not a regular file");
    const hash = createHash("sha256");
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      // one byte more than allowed: a file that grew past its size at the scan is caught here, unread beyond it
      const { bytesRead, buffer } = await file.read(
        Buffer.allocUnsafe(Math.min(READ_CHUNK, maxBytes + 1 - total)),
        0,
        Math.min(READ_CHUNK, maxBytes + 1 - total),
        null,
      );
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) return undefined;
      const chunk = buffer.subarray(0, bytesRead);
      hash.update(chunk);
      chunks.push(chunk);
    }
    return { bytes: Buffer.concat(chunks, total), sha256: hash.digest("hex") };
  } finally {
    await file.close();
  }
}

/**
 * A folder scanned every `scanMs` (polling, not inotify: carts export to network shares and USB
 * sticks, where change notification is unreliable). A file is taken once its size and time have
 * not changed for `stableMs` and it does not carry a temporary name; nothing is deleted: a file
 * goes to done/ once committed, or to rejected/ beside a `.why.txt` sidecar.
 *
 * Bounded, so that no folder can hold up the gateway (issue 19 item 9): the folder must resolve to
 * where it did at start and lie on no pseudo filesystem (src/transports/watched-folders.ts), at most
 * MAX_FOLDER_ENTRIES entries are looked at per scan, a file still changing after `maxSettleMs` is
 * set aside, and every read is asynchronous, in chunks, never past `maxBytes` whatever size the
 * file claims (a /proc file claims 0).
 */
export function watchedFolder(spec: Extract<TransportSpec, { type: "folder" }>): Transport {
  const { dir, stableMs, scanMs, maxBytes } = spec;
  const maxSettleMs = spec.maxSettleMs ?? MAX_SETTLE_MS;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let busy: Promise<void> = Promise.resolve();
  /** Each file's last size and time, since when they held, and when it was first seen (monotonic ms). */
  const seen = new Map<string, { size: number; mtimeMs: number; since: number; first: number }>();
  const moveTo = (sub: string, name: string) => {
    mkdirSync(join(dir, sub), { recursive: true });
    let target = join(dir, sub, name);
    try {
      statSync(target);
      target = join(dir, sub, `${Date.now()}-${name}`); // never overwrite an earlier file of that name
    } catch {
      // free
    }
    renameSync(join(dir, name), target);
    return target;
  };
  const setAside = (name: string, why: string) => {
    const target = moveTo("rejected", name);
    writeFileSync(`${target}.why.txt`, `${why}\n`);
  };
  return {
    start(events) {
      let watching = false;
      let real: string | undefined;
      let crowded = false;
      const scan = async () => {
        timer = null;
        try {
          await mkdir(dir, { recursive: true });
          const now = await realpath(dir);
          real ??= now;
          if (now !== real)
            throw new TransportError(
              "VG_FOLDER_MOVED",
              `${dir} now leads to ${now}, not ${real} as when the device started: not read (restart the device once this is intended)`,
            );
          const pseudo = pseudoFilesystem(real);
          if (pseudo) throw new TransportError("VG_FOLDER_NOT_ALLOWED", `${dir} is not watched: ${pseudo}`);
          if (!watching) events.state({ state: "listening", address: dir });
          watching = true;
          const names: string[] = [];
          for await (const entry of await opendir(dir)) {
            if (names.length === MAX_FOLDER_ENTRIES) {
              if (!crowded) {
                // said once, as the device's last error; the folder is still watched
                events.state({
                  state: "retrying",
                  address: dir,
                  inMs: scanMs,
                  error: new TransportError(
                    "VG_FOLDER_CROWDED",
                    `more than ${MAX_FOLDER_ENTRIES} entries in ${dir}: the first ${MAX_FOLDER_ENTRIES} are taken first, the rest as they leave`,
                  ),
                });
                events.state({ state: "listening", address: dir });
              }
              crowded = true;
              break;
            }
            if (entry.isFile() && !UNFINISHED.test(entry.name)) names.push(entry.name);
          }
          for (const name of seen.keys()) if (!names.includes(name)) seen.delete(name);
          for (const name of names) {
            if (stopped) return;
            const st = await stat(join(dir, name)).catch(() => undefined);
            if (!st?.isFile()) continue;
            const last = seen.get(name);
            const mono = performance.now();
            if (!last || last.size !== st.size || last.mtimeMs !== st.mtimeMs) {
              if (last && mono - last.first > maxSettleMs) {
                seen.delete(name);
                setAside(
                  name,
                  `VG_FILE_NEVER_SETTLED: still changing ${Math.round((mono - last.first) / 1000)} s after it appeared (at most ${Math.round(maxSettleMs / 1000)} s): not a finished export`,
                );
                continue;
              }
              seen.set(name, { size: st.size, mtimeMs: st.mtimeMs, since: mono, first: last?.first ?? mono });
              continue;
            }
            if (mono - last.since < stableMs) continue;
            seen.delete(name);
            // Not read (further): a file this size is no ECG, and reading it whole could exhaust memory.
            const tooLarge = `VG_FILE_TOO_LARGE: ${st.size} bytes, more than the ${maxBytes} this device takes`;
            if (st.size > maxBytes) {
              setAside(name, tooLarge);
              continue;
            }
            const read = await readBounded(join(dir, name), maxBytes);
            if (!read) {
              setAside(name, `${tooLarge} (it grew while read, or holds more than it says)`);
              continue;
            }
            busy = events.file({
              name,
              bytes: read.bytes,
              sha256: read.sha256,
              done: () => void moveTo("done", name),
              reject: (reason) => setAside(name, reason),
            });
            await busy;
          }
        } catch (err) {
          watching = false;
          events.state({ state: "retrying", address: dir, inMs: scanMs, error: folderError(err, dir) });
        }
        if (!stopped) timer = setTimeout(() => void scan(), scanMs);
      };
      void scan();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await busy.catch(() => undefined);
    },
  };
}
