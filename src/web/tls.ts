// The page's certificate (issue 13 item 7, docs/decisions/0015-page-certificate.md): wherever the
// page leaves the box, it is served over HTTPS. IT's certificate when provisioned (web.tls); else
// one made on the first start by the `openssl` command, self-signed, kept in <stateDir>/web-tls/ and
// shown by its SHA-256 fingerprint (the log, `vitalgate status`) so that a user can check what the
// browser shows. Only a page bound to loopback alone stays plain HTTP.
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { hostname, networkInterfaces } from "node:os";
import { join } from "node:path";

/** A listening address that only the box itself reaches. */
export function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Whether the page is served over HTTPS: with IT's certificate, or on any address beyond loopback. */
export function pageIsHttps(web: { host: string; tls?: unknown }): boolean {
  return web.tls !== undefined || !isLoopbackHost(web.host);
}

export interface PageCertificate {
  cert: Buffer;
  key: Buffer;
  /** "configured": IT's (web.tls); "self-signed": made on this box. */
  source: "configured" | "self-signed";
  certFile: string;
  /** As browsers show it: colon-separated upper-case hex. */
  fingerprint256: string;
}

/**
 * The certificate the page is served with, or null for plain HTTP (loopback only). Makes the
 * self-signed one when it is missing; throws, saying what to do, when it cannot.
 */
export function pageCertificate(
  web: { host: string; hostNames: readonly string[]; tls?: { certFile: string; keyFile: string } },
  stateDir: string,
  read: (path: string) => Buffer,
  gatewayId: string,
): PageCertificate | null {
  if (web.tls) {
    const cert = read(web.tls.certFile);
    return {
      cert,
      key: read(web.tls.keyFile),
      source: "configured",
      certFile: web.tls.certFile,
      fingerprint256: new X509Certificate(cert).fingerprint256,
    };
  }
  if (!isLoopbackHost(web.host)) {
    const dir = join(stateDir, "web-tls");
    const certFile = join(dir, "cert.pem");
    const keyFile = join(dir, "key.pem");
    if (!existsSync(certFile) || !existsSync(keyFile)) makeSelfSigned(dir, certFile, keyFile, gatewayId, web.hostNames);
    const cert = read(certFile);
    return {
      cert,
      key: read(keyFile),
      source: "self-signed",
      certFile,
      fingerprint256: new X509Certificate(cert).fingerprint256,
    };
  }
  return null;
}

/** Ten years: a box in a vehicle is not re-provisioned; the fingerprint, not the dates, is what is checked. */
const DAYS = 3650;

function makeSelfSigned(
  dir: string,
  certFile: string,
  keyFile: string,
  gatewayId: string,
  hostNames: readonly string[],
): void {
  // The folder is the vitalgate user's alone: the key is never readable by others, not even while openssl writes it.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const box = hostname();
  const ips = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined)
    .map((a) => a.address.split("%")[0]!);
  const names = [...new Set(["localhost", box, `${box}.local`, ...hostNames])]
    .filter((n) => /^[A-Za-z0-9.-]+$/.test(n))
    .map((n) => `DNS:${n}`);
  const san = [...names, ...[...new Set(["127.0.0.1", "::1", ...ips])].map((ip) => `IP:${ip}`)].join(",");
  const cn = gatewayId.replace(/[^A-Za-z0-9._-]/g, "-");
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-sha256",
        "-days",
        String(DAYS),
        "-subj",
        `/CN=vitalgate ${cn}`,
        "-addext",
        `subjectAltName=${san}`,
        "-keyout",
        keyFile,
        "-out",
        certFile,
      ],
      { stdio: ["ignore", "ignore", "pipe"], timeout: 60_000 },
    );
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    const why =
      e.code === "ENOENT"
        ? "the openssl command is not installed (apt-get install openssl)"
        : `openssl failed: ${String(e.stderr ?? e.message)
            .trim()
            .slice(0, 300)}`;
    throw new Error(
      `cannot make the page's certificate in ${dir}: ${why}. Install openssl, provision web.tls, or set web.host to 127.0.0.1`,
      { cause: err },
    );
  }
}
