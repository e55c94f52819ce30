// XML reading shared by the ECG decoders (HL7 aECG, Philips), hardened for files from anywhere:
//  - the text encoding comes from the byte-order mark, else the XML declaration, else UTF-8;
//  - a document with a DTD is refused outright: no <!DOCTYPE>, no <!ENTITY>, so no entity expansion
//    ("billion laughs") and no external entities. The five predefined entities and character
//    references are resolved by us, once, without recursion;
//  - input size and element nesting are capped.
import { XMLParser, XMLValidator } from "fast-xml-parser";
import type { CodecError } from "../codec.ts";

export type XmlNode = Record<string, unknown>;

export interface XmlReadOptions {
  maxBytes: number;
  /** Deepest element nesting accepted. */
  maxDepth?: number;
  /** Error code prefix, e.g. "AECG" gives AECG_DTD, AECG_XML. */
  prefix: string;
  /**
   * Accept a document type declaration that only names an external DTD, `<!DOCTYPE RestingECG
   * SYSTEM "restecg.dtd">` as every GE MUSE export has. The DTD is never fetched and the declaration
   * is blanked out before parsing; one with an internal subset ([…]) or any <!ENTITY> is still refused.
   */
  allowExternalDtd?: boolean;
}

/** A DOCTYPE naming only an external DTD: no internal subset, so it cannot declare an entity. */
const EXTERNAL_DOCTYPE =
  /<!DOCTYPE\s+[A-Za-z_][\w.:-]*\s+(SYSTEM\s+("[^"<>[\]]*"|'[^'<>[\]]*')|PUBLIC\s+("[^"<>[\]]*"|'[^'<>[\]]*')\s+("[^"<>[\]]*"|'[^'<>[\]]*'))\s*>/;

const LABELS: Record<string, string> = {
  "utf-8": "utf-8",
  utf8: "utf-8",
  "utf-16": "utf-16le",
  "utf-16le": "utf-16le",
  "utf-16be": "utf-16be",
  "iso-8859-1": "latin1",
  latin1: "latin1",
  "us-ascii": "utf-8",
  ascii: "utf-8",
  "windows-1252": "latin1",
  gb2312: "gbk",
  gbk: "gbk",
  gb18030: "gb18030",
};

/** Decodes an XML file's bytes to text, as the BOM or the XML declaration says. */
export function decodeXmlBytes(bytes: Uint8Array): { text: string } | { error: string } {
  let encoding = "utf-8";
  let start = 0;
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) start = 3;
  else if (bytes[0] === 0xff && bytes[1] === 0xfe) {
    encoding = "utf-16le";
    start = 2;
  } else if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    encoding = "utf-16be";
    start = 2;
  } else if (bytes[0] === 0x3c && bytes[1] === 0x00)
    encoding = "utf-16le"; // "<" in UTF-16LE without a BOM
  else if (bytes[0] === 0x00 && bytes[1] === 0x3c) encoding = "utf-16be";
  else {
    // An 8-bit encoding: the declaration (ASCII) names it.
    const head = new TextDecoder("latin1").decode(bytes.subarray(0, 200));
    const m = /^\s*<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9._-]+)["']/.exec(head);
    if (m) {
      const label = LABELS[m[1]!.toLowerCase()];
      if (label === undefined)
        return { error: `the XML declaration names encoding "${m[1]!.slice(0, 40)}", which is not supported` };
      if (!label.startsWith("utf-16")) encoding = label;
    }
  }
  try {
    return { text: new TextDecoder(encoding, { fatal: false }).decode(bytes.subarray(start)) };
  } catch {
    return { error: `cannot decode the text as ${encoding}` };
  }
}

/**
 * Parses XML text into plain objects: attributes as "@_name", namespace prefixes removed, values
 * left as strings, text content under "#text". Refuses DTDs.
 */
export function readXml(
  bytes: Uint8Array,
  options: XmlReadOptions,
): { root: string; namespace?: string; node: XmlNode; doc: XmlNode } | { error: CodecError } {
  const p = options.prefix;
  if (bytes.length === 0) return { error: { code: `${p}_EMPTY`, message: "the file is empty" } };
  if (bytes.length > options.maxBytes) {
    return {
      error: {
        code: `${p}_TOO_LARGE`,
        message: `the file has ${bytes.length} bytes, more than the ${options.maxBytes} accepted`,
      },
    };
  }
  const decoded = decodeXmlBytes(bytes);
  if ("error" in decoded) return { error: { code: `${p}_ENCODING`, message: decoded.error } };
  let text = decoded.text;
  if (options.allowExternalDtd) {
    const m = EXTERNAL_DOCTYPE.exec(text.slice(0, 4096));
    if (m) text = text.slice(0, m.index) + " ".repeat(m[0].length) + text.slice(m.index + m[0].length);
  }
  if (/<!DOCTYPE/i.test(text) || /<!ENTITY/i.test(text)) {
    return {
      error: {
        code: `${p}_DTD`,
        message:
          "the document declares a DTD (<!DOCTYPE> or <!ENTITY>); DTDs are refused, so no entity is ever expanded",
      },
    };
  }
  // The parser itself forgives unclosed elements; a truncated file must not pass as whole.
  let valid: ReturnType<typeof XMLValidator.validate>;
  try {
    valid = XMLValidator.validate(text, { allowBooleanAttributes: false });
  } catch (e) {
    return { error: { code: `${p}_XML`, message: `not well-formed XML: ${describe(e)}` } };
  }
  if (valid !== true) {
    return {
      error: {
        code: `${p}_XML`,
        message: `not well-formed XML (line ${valid.err.line}): ${describe(valid.err.msg)}`,
        where: `line ${valid.err.line}`,
      },
    };
  }
  const parser = new XMLParser({
    ignoreAttributes: false,
    attributeNamePrefix: "@_",
    removeNSPrefix: true,
    parseTagValue: false,
    parseAttributeValue: false,
    trimValues: true,
    processEntities: false,
    htmlEntities: false,
    ignoreDeclaration: true,
    ignorePiTags: true,
    maxNestedTags: options.maxDepth ?? 100,
  });
  let doc: unknown;
  try {
    doc = parser.parse(text);
  } catch (e) {
    return { error: { code: `${p}_XML`, message: `not well-formed XML: ${describe(e)}` } };
  }
  if (typeof doc !== "object" || doc === null)
    return { error: { code: `${p}_XML`, message: "no XML document element" } };
  const roots = Object.keys(doc).filter((k) => !k.startsWith("#") && !k.startsWith("?"));
  if (roots.length !== 1)
    return {
      error: {
        code: `${p}_XML`,
        message: roots.length === 0 ? "no XML document element" : "more than one document element",
      },
    };
  const root = roots[0]!;
  const value = (doc as XmlNode)[root];
  const node: XmlNode =
    typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as XmlNode)
      : typeof value === "string"
        ? { "#text": value }
        : {};
  return { root, namespace: rootNamespace(text), node, doc: doc as XmlNode };
}

/** The namespace of the document element, from its start tag (the parser drops xmlns attributes). */
function rootNamespace(xml: string): string | undefined {
  const body = xml.replace(/<!--[\s\S]*?-->/g, "");
  const m = /<([A-Za-z_][\w.-]*:)?[A-Za-z_][\w.-]*(\s[^>]*)?>/.exec(body);
  if (!m) return undefined;
  const prefix = m[1] ? `:${m[1].slice(0, -1)}` : "";
  const ns = new RegExp(`\\sxmlns${prefix}\\s*=\\s*("([^"]*)"|'([^']*)')`).exec(m[2] ?? "");
  return ns ? (ns[2] ?? ns[3]) : undefined;
}

function describe(e: unknown): string {
  const s = e instanceof Error ? e.message : String(e);
  return s.replace(/\s+/g, " ").slice(0, 160);
}

// ---- navigation ---------------------------------------------------------------------------------

/** A child element or elements, always as an array of element objects (text-only children wrapped). */
export function children(node: unknown, name: string): XmlNode[] {
  if (typeof node !== "object" || node === null) return [];
  const v = (node as XmlNode)[name];
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((x) =>
    typeof x === "object" && x !== null ? (x as XmlNode) : { "#text": x === "" ? "" : String(x) },
  );
}

export function child(node: unknown, name: string): XmlNode | undefined {
  return children(node, name)[0];
}

/** Follows a path of element names, taking the first at each step. */
export function path(node: unknown, ...names: string[]): XmlNode | undefined {
  let n: unknown = node;
  for (const name of names) {
    n = child(n, name);
    if (n === undefined) return undefined;
  }
  return n as XmlNode;
}

/** An element's text, entity references resolved, or undefined when absent or empty. */
export function text(node: unknown): string | undefined {
  if (node === undefined || node === null) return undefined;
  if (typeof node === "string") return node === "" ? undefined : unescapeXml(node);
  if (typeof node !== "object") return String(node);
  const t = (node as XmlNode)["#text"];
  if (t === undefined || t === null || t === "") return undefined;
  return unescapeXml(String(t));
}

export function attr(node: unknown, name: string): string | undefined {
  if (typeof node !== "object" || node === null) return undefined;
  const v = (node as XmlNode)[`@_${name}`];
  return v === undefined || v === null ? undefined : unescapeXml(String(v));
}

/**
 * Every element named `name` below `node`, depth first, bounded in depth and count so that a
 * hostile document cannot make the walk expensive.
 */
export function findAll(node: unknown, name: string, maxDepth = 64, maxCount = 10_000): XmlNode[] {
  const out: XmlNode[] = [];
  const walk = (n: unknown, depth: number) => {
    if (depth > maxDepth || out.length >= maxCount || typeof n !== "object" || n === null) return;
    if (Array.isArray(n)) {
      for (const x of n) walk(x, depth);
      return;
    }
    for (const [k, v] of Object.entries(n as XmlNode)) {
      if (k.startsWith("@_") || k === "#text") continue;
      if (k === name) for (const c of children(n, k)) if (out.length < maxCount) out.push(c);
      walk(v, depth + 1);
    }
  };
  walk(node, 0);
  return out;
}

const PREDEFINED: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

/** Resolves the five predefined entities and numeric character references; leaves others alone. */
export function unescapeXml(s: string): string {
  if (!s.includes("&")) return s;
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]{2,4});/g, (whole, ref: string) => {
    if (ref.startsWith("#")) {
      const cp = ref[1] === "x" || ref[1] === "X" ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return cp > 0 && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff) ? String.fromCodePoint(cp) : whole;
    }
    return PREDEFINED[ref] ?? whole;
  });
}
