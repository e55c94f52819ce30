// A stand-in for systemd's notification socket (sd_notify(3)): a Unix datagram socket, which Node
// cannot open, received by python3; each datagram becomes one line "<unix ms> <assignments, | between>".
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitFor } from "./mqtt.ts";

export interface NotifyMessage {
  atMs: number;
  /** The message's assignments, e.g. ["READY=1", "STATUS=running"]. */
  fields: string[];
}

export interface NotifySocket {
  path: string;
  messages: NotifyMessage[];
  close(): void;
}

// recv() without room for ancillary data: systemd-notify's barrier pipe (BARRIER=1) is closed by the
// kernel as systemd closes it, so systemd-notify returns at once.
const RECEIVER = `
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    data = s.recv(65536)
    print("%d %s" % (time.time() * 1000, data.decode().replace("\\n", "|")), flush=True)
`;

export async function notifySocket(): Promise<NotifySocket> {
  const path = join(mkdtempSync(join(tmpdir(), "vg-notify-")), "notify.sock");
  const child = spawn("python3", ["-c", RECEIVER, path], { stdio: ["ignore", "pipe", "inherit"] });
  const messages: NotifyMessage[] = [];
  let buffered = "";
  child.stdout.on("data", (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split("\n");
    buffered = lines.pop()!;
    for (const line of lines) {
      const m = /^(\d+) (.*)$/.exec(line);
      if (m) messages.push({ atMs: Number(m[1]), fields: m[2]!.split("|") });
    }
  });
  await waitFor(() => existsSync(path), 10_000, "the notify socket");
  return { path, messages, close: () => child.kill() };
}
