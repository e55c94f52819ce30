import { describe, expect, it } from "vitest";
import { ASSOCIATE_RJ_TRANSIENT, ASSOCIATE_RQ_HEAD_BYTES, associateRqTitles } from "./index.ts";

/** The first bytes of an A-ASSOCIATE-RQ (PS3.8 Table 9-11) with the PDU length given. */
function requestHead(called: string, calling: string, pduLength = 205): Uint8Array {
  const head = Buffer.alloc(ASSOCIATE_RQ_HEAD_BYTES, 0x20);
  head.writeUInt8(0x01, 0);
  head.writeUInt8(0, 1);
  head.writeUInt32BE(pduLength, 2);
  head.writeUInt16BE(1, 6); // protocol version
  head.writeUInt16BE(0, 8); // reserved
  head.write(called, 10, "latin1");
  head.write(calling, 26, "latin1");
  return head;
}

describe("DICOM upper layer PDUs", () => {
  it("reads the called and calling AE titles of an association request, trimmed", () => {
    expect(associateRqTitles(requestHead("VITALGATE", "CART-7"))).toEqual({ called: "VITALGATE", calling: "CART-7" });
    expect(associateRqTitles(requestHead("", ""))).toEqual({ called: "", calling: "" });
  });

  it("is not a request when the PDU is shorter than its fixed part, another type, or cut short", () => {
    expect(associateRqTitles(requestHead("A", "B", 67))).toBeUndefined();
    const other = requestHead("A", "B");
    other[0] = 0x04;
    expect(associateRqTitles(other)).toBeUndefined();
    expect(associateRqTitles(requestHead("A", "B").subarray(0, 41))).toBeUndefined();
  });

  it("rejects transient: result 2, source 3, reason 1 (PS3.8 Table 9-21)", () => {
    expect([...ASSOCIATE_RJ_TRANSIENT]).toEqual([0x03, 0, 0, 0, 0, 0x04, 0, 0x02, 0x03, 0x01]);
  });
});
