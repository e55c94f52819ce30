// Transports the core opens, watches and reopens for drivers (DESIGN.md §2). A driver names the
// transport it needs (a TransportSpec); it never opens a socket itself.
import type { TransportSpec } from "../devices/driver.ts";
import { dicomScp } from "./dicom-scp.ts";
import { watchedFolder } from "./folder.ts";
import { serialPort } from "./serial.ts";
import { tcpClient, tcpListener } from "./tcp.ts";
import type { Transport, TransportOptions } from "./transport.ts";

export function openTransport(spec: TransportSpec, options: TransportOptions): Transport {
  switch (spec.type) {
    case "tcp-listen":
      return tcpListener(spec.host, spec.port, options);
    case "tcp-connect":
      return tcpClient(spec.host, spec.port, options);
    case "serial":
      return serialPort(spec, options);
    case "folder":
      return watchedFolder(spec);
    case "dicom-scp":
      return dicomScp(spec, options);
  }
}
