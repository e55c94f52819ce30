// Character sets named in MSH-18 (HL7 table 0211) and how to read and write them with what Node
// has built in (WHATWG TextDecoder; TextEncoder only does UTF-8).

/**
 * HL7 table 0211 names, and the labels devices use in their place, normalised (upper case, no
 * spaces, hyphens, underscores or slashes) to WHATWG encoding labels. Multi-byte legacy sets matter
 * here: Chinese monitors send GB18030/GBK.
 */
const CHARSETS: Record<string, string> = {
  ASCII: "utf-8", // a subset; UTF-8 decodes it exactly and anything beyond as U+FFFD
  USASCII: "utf-8",
  UNICODEUTF8: "utf-8",
  UTF8: "utf-8",
  UNICODE: "utf-8", // HL7 leaves "UNICODE" ambiguous; on the wire it is UTF-8 in practice
  "88591": "iso-8859-1",
  ISO88591: "iso-8859-1",
  LATIN1: "iso-8859-1",
  "88592": "iso-8859-2",
  "88593": "iso-8859-3",
  "88594": "iso-8859-4",
  "88595": "iso-8859-5",
  "88596": "iso-8859-6",
  "88597": "iso-8859-7",
  "88598": "iso-8859-8",
  "88599": "iso-8859-9",
  "885915": "iso-8859-15",
  GB180302000: "gb18030",
  GB18030: "gb18030",
  GBK: "gbk",
  GB2312: "gbk", // GBK is a superset of GB 2312 (EUC-CN)
  CP936: "gbk",
  BIG5: "big5",
  ISOIR87: "iso-2022-jp",
  KSX1001: "euc-kr",
};

/** The WHATWG encoding for an MSH-18 value or config label, or undefined when not supported. */
export function charsetEncoding(label: string): string | undefined {
  const key = label.toUpperCase().replace(/[\s\-_/]/g, "");
  if (key === "") return undefined;
  const known = CHARSETS[key];
  if (known) return known;
  // Accept the WHATWG labels themselves ("utf-8", "gb18030", "windows-1252"...).
  try {
    return new TextDecoder(label.trim()).encoding;
  } catch {
    return undefined;
  }
}

export function isSupportedCharset(label: string): boolean {
  const e = charsetEncoding(label);
  // UTF-16 and friends are not ASCII-compatible: the MSH could not even be found in them.
  return e !== undefined && !e.startsWith("utf-16") && e !== "iso-2022-jp";
}

const decoders = new Map<string, { decode(bytes: Uint8Array): string }>();

export function decodeText(bytes: Uint8Array, encoding: string): string {
  let d = decoders.get(encoding);
  if (!d) {
    d = new TextDecoder(encoding, { fatal: false, ignoreBOM: false });
    decoders.set(encoding, d);
  }
  return d.decode(bytes);
}

const utf8 = new TextEncoder();
const reverse = new Map<string, Map<number, Uint8Array>>();

/**
 * Encodes text in an ASCII-compatible encoding. UTF-8 uses TextEncoder; for the others (the
 * replies we build echo a sender's application names, which a Chinese device may write in GB18030)
 * the byte sequences are found by decoding every candidate sequence once with the platform's own
 * decoder, so encoding is the exact inverse of decoding. Characters the encoding lacks become "?".
 */
export function encodeText(text: string, encoding: string): Uint8Array {
  if (encoding === "utf-8") return utf8.encode(text);
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  if (ascii) return utf8.encode(text);
  const table = reverseTable(encoding);
  const out: number[] = [];
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (cp < 0x80) out.push(cp);
    else {
      const seq = table.get(cp);
      if (seq) out.push(...seq);
      else out.push(0x3f);
    }
  }
  return Uint8Array.from(out);
}

function reverseTable(encoding: string): Map<number, Uint8Array> {
  let t = reverse.get(encoding);
  if (t) return t;
  t = new Map();
  const d = new TextDecoder(encoding, { fatal: true });
  const tryAdd = (seq: Uint8Array): void => {
    let s: string;
    try {
      s = d.decode(seq);
    } catch {
      return;
    }
    const cp = s.codePointAt(0);
    if (cp !== undefined && cp >= 0x80 && [...s].length === 1 && !t!.has(cp)) t!.set(cp, seq);
  };
  for (let b = 0x80; b <= 0xff; b++) tryAdd(Uint8Array.of(b));
  if (encoding === "gb18030" || encoding === "gbk" || encoding === "big5" || encoding === "euc-kr") {
    for (let lead = 0x81; lead <= 0xfe; lead++) {
      for (let trail = 0x40; trail <= 0xfe; trail++) tryAdd(Uint8Array.of(lead, trail));
    }
  }
  if (encoding === "gb18030") {
    // Four-byte sequences cover the rest of the BMP.
    for (let b1 = 0x81; b1 <= 0x84; b1++)
      for (let b2 = 0x30; b2 <= 0x39; b2++)
        for (let b3 = 0x81; b3 <= 0xfe; b3++)
          for (let b4 = 0x30; b4 <= 0x39; b4++) tryAdd(Uint8Array.of(b1, b2, b3, b4));
  }
  reverse.set(encoding, t);
  return t;
}
