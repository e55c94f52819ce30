// The few DICOM Upper Layer PDUs read or written byte by byte (DICOM PS3.8 §9.3), for telling a
// DICOM association request apart from other first bytes and refusing it without a DIMSE stack.
// The DICOM SCP itself (src/transports/dicom-scp.ts) uses a library. Pure.

/** PDU type of an A-ASSOCIATE-RQ (PS3.8 §9.3.2, Table 9-11). */
export const A_ASSOCIATE_RQ = 0x01;

/** An A-ASSOCIATE-RQ's fixed part up to the calling AE title: PDU header (6), protocol version, reserved, called AE (10-25), calling AE (26-41). */
export const ASSOCIATE_RQ_HEAD_BYTES = 42;

/**
 * A-ASSOCIATE-RJ (PS3.8 §9.3.4, Table 9-21): type 3, length 4, reserved, result 2 rejected-transient,
 * source 3 service-provider (presentation related), reason 1 temporary-congestion: the requestor keeps
 * what it wanted to send and tries again later.
 */
export const ASSOCIATE_RJ_TRANSIENT = Uint8Array.of(0x03, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x02, 0x03, 0x01);

/**
 * The called and calling AE titles of an A-ASSOCIATE-RQ from its first ASSOCIATE_RQ_HEAD_BYTES bytes
 * (space-padded, trimmed), or undefined when its PDU length is shorter than the request's fixed part
 * (68 bytes after the 6-byte header, Table 9-11): not an association request.
 */
export function associateRqTitles(head: Uint8Array): { called: string; calling: string } | undefined {
  if (head.length < ASSOCIATE_RQ_HEAD_BYTES || head[0] !== A_ASSOCIATE_RQ) return undefined;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (view.getUint32(2) < 68) return undefined;
  const title = (from: number) =>
    String.fromCharCode(...head.subarray(from, from + 16))
      .replace(/\0/g, " ")
      .trim();
  return { called: title(10), calling: title(26) };
}
