// Loads vitalgate.yaml: YAML with source positions, environment overrides, one validation pass that
// collects every error with its line and column, and secrets read from their files (DESIGN.md §7).
import { readFileSync } from "node:fs";
import { isMap, isScalar, isSeq, LineCounter, parse as parseYaml, parseDocument } from "yaml";
import type { Document, Node as YamlNode, Pair } from "yaml";
import type { z } from "zod";
import { configSchema } from "./schema.ts";
import type { Config, ConfigError, DriverLookup } from "./schema.ts";

export type { Config, ConfigError, DriverLookup };

export interface LoadConfigOptions {
  /** The file to read, and the name errors are reported against. With `text`, only the name. */
  file?: string;
  /** The document itself, instead of reading `file`. */
  text?: string;
  /** Environment for `VITALGATE__SECTION__KEY=value` overrides; none when absent. */
  env?: Record<string, string | undefined>;
  drivers: DriverLookup;
  /** Reads a secret file (uplink.passwordFile, embeddedBroker.center.passwordFile). Default: the file's text, one trailing newline removed. */
  readSecret?: (path: string) => string;
  /** Reads a TLS file (uplink.caFile, certFile, keyFile; web.tls.certFile, keyFile). Default: fs.readFileSync as UTF-8. */
  readTlsFile?: (path: string) => string;
  /**
   * Whether this runs on the box itself (start, the installer's `config check --on-box`; the default):
   * a secret or TLS file that is absent or unreadable is then an error. Off the box (`config check` on a
   * laptop) it is a warning, as those files exist only on the box.
   */
  onBox?: boolean;
  /** Reads the configuration file. Default: fs.readFileSync as UTF-8. */
  readFile?: (path: string) => string;
}

/** Secrets are returned apart from the configuration, so logging or showing the config never shows them. */
export interface ConfigSecrets {
  uplinkPassword?: string;
  /** The center bridge's password on the embedded broker (embeddedBroker.center.passwordFile). */
  centerPassword?: string;
  /** The county center's own logins (center.yaml, center/config.ts): its broker's and its database's. */
  centerBrokerPassword?: string;
  centerDatabasePassword?: string;
}

/**
 * The files a configuration names that exist only on the box: the secrets (`secret`: which one the file
 * holds) and the TLS material. What they are called in messages.
 */
const BOX_FILES: { at: string[]; what: string; secret?: keyof ConfigSecrets }[] = [
  { at: ["uplink", "caFile"], what: "CA certificate file" },
  { at: ["uplink", "certFile"], what: "client certificate file" },
  { at: ["uplink", "keyFile"], what: "client key file" },
  { at: ["uplink", "passwordFile"], what: "password file", secret: "uplinkPassword" },
  { at: ["embeddedBroker", "center", "passwordFile"], what: "password file", secret: "centerPassword" },
  { at: ["web", "tls", "certFile"], what: "page certificate file" },
  { at: ["web", "tls", "keyFile"], what: "page key file" },
  { at: ["center", "broker", "caFile"], what: "CA certificate file" },
  { at: ["center", "broker", "certFile"], what: "client certificate file" },
  { at: ["center", "broker", "keyFile"], what: "client key file" },
  { at: ["center", "broker", "passwordFile"], what: "password file", secret: "centerBrokerPassword" },
  { at: ["center", "database", "passwordFile"], what: "password file", secret: "centerDatabasePassword" },
];

/** Reading a file failed for a reason that holds off the box: it is not there, or not for this user. */
const ABSENT_HERE = new Set(["ENOENT", "EACCES", "EPERM", "ENOTDIR"]);

export type LoadConfigResult =
  /** `warnings`: off the box, the secret and TLS files that could not be read here (the box needs them). */
  | { ok: true; config: Config; secrets: ConfigSecrets; warnings: ConfigError[] }
  /** `not-found`: the file does not exist (the CLI may fall back to the embedded default). */
  | { ok: false; reason: "not-found" | "invalid"; errors: ConfigError[]; warnings?: ConfigError[] };

/** Another document read the same way (positions, environment, secret and TLS files): the center's (center/config.ts). */
export type LoadDocumentResult<T> =
  | { ok: true; config: T; secrets: ConfigSecrets; warnings: ConfigError[] }
  | { ok: false; reason: "not-found" | "invalid"; errors: ConfigError[]; warnings?: ConfigError[] };

export const ENV_PREFIX = "VITALGATE__";

type Path = (string | number)[];

interface EnvSource {
  variable: string;
  path: Path;
}

export function loadConfig(options: LoadConfigOptions): LoadConfigResult {
  return loadDocument(options, configSchema(options.drivers));
}

/** A YAML document checked by `schema`, with the same errors, environment overrides and box files as vitalgate.yaml. */
export function loadDocument<S extends z.ZodType>(
  options: LoadConfigOptions,
  schema: S,
): LoadDocumentResult<z.output<S>> {
  const invalid = (errors: ConfigError[]) => ({ ok: false as const, reason: "invalid" as const, errors });
  const file = options.file;
  let text = options.text;
  if (text === undefined) {
    if (file === undefined) return invalid([{ path: "", message: "no configuration given (neither a file nor text)" }]);
    try {
      text = (options.readFile ?? readUtf8)(file);
    } catch (err) {
      const code = errorCode(err);
      if (code === "ENOENT") {
        return {
          ok: false,
          reason: "not-found",
          errors: [{ path: "", file, message: `configuration file ${file} does not exist` }],
        };
      }
      return invalid([
        { path: "", file, message: `cannot read configuration file ${file}: ${describeFileError(err)}` },
      ]);
    }
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return invalid(
      doc.errors.map((e) => {
        const at = lineCounter.linePos(e.pos[0]);
        return {
          path: "",
          file,
          line: at.line,
          col: at.col,
          message: `YAML syntax error: ${e.message.split("\n")[0]}`,
        };
      }),
    );
  }

  const locate = locator(doc, lineCounter, file);
  const errors: ConfigError[] = [];
  const envSources = applyEnvironment(doc, options.env ?? {}, schema, options.drivers, errors);
  const raw: unknown = doc.contents === null ? {} : doc.toJS({ maxAliasCount: 100 });
  dropEmptySections(raw, schema);

  const result = schema.safeParse(raw);
  if (!result.success) {
    const context: IssueContext = { raw, root: schema, drivers: options.drivers, locate, envSources };
    for (const issue of result.error.issues) errors.push(...issueToErrors(issue, context));
  }

  const secrets: ConfigSecrets = {};
  const warnings: ConfigError[] = [];
  const onBox = options.onBox ?? true;
  for (const { at, what, secret } of BOX_FILES) {
    const file = valueAt(raw, at);
    if (typeof file !== "string" || file === "") continue;
    const problem = (message: string) => attribute({ path: at.join("."), message, ...locate(at) }, at, envSources);
    let text: string;
    try {
      text = secret ? (options.readSecret ?? readSecretFile)(file) : (options.readTlsFile ?? readUtf8)(file);
    } catch (err) {
      const code = errorCode(err);
      if (!onBox && code !== undefined && ABSENT_HERE.has(code))
        warnings.push(problem(`the ${what} ${file} cannot be read here (${describeFileError(err)}); the box needs it`));
      else errors.push(problem(`cannot read the ${what} ${file}: ${describeFileError(err)}`));
      continue;
    }
    if (secret ? text === "" : text.trim() === "") errors.push(problem(`the ${what} ${file} is empty`));
    else if (secret) secrets[secret] = text;
    else if (!text.includes("-----BEGIN "))
      errors.push(problem(`the ${what} ${file} is not PEM (no "-----BEGIN" line)`));
  }

  if (errors.length > 0 || !result.success)
    return { ...invalid(sortByPosition(errors)), warnings: sortByPosition(warnings) };
  return { ok: true, config: result.data, secrets, warnings: sortByPosition(warnings) };
}

/**
 * One line per error, e.g. `vitalgate.yaml:12:7 devices[0].options.port: expected number, received string`;
 * warnings say so: `vitalgate.yaml:24:11 warning: uplink.caFile: …`.
 */
export function formatConfigErrors(errors: readonly ConfigError[], kind: "error" | "warning" = "error"): string {
  return errors
    .map((e) => {
      const where = [e.file, e.line, e.line === undefined ? undefined : e.col].filter((p) => p !== undefined).join(":");
      const what = (kind === "warning" ? "warning: " : "") + (e.path === "" ? e.message : `${e.path}: ${e.message}`);
      return where === "" ? what : `${where} ${what}`;
    })
    .join("\n");
}

/** `["devices", 0, "options", "port"]` → `devices[0].options.port`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else out += out === "" ? String(segment) : `.${String(segment)}`;
  }
  return out;
}

function readUtf8(path: string): string {
  return readFileSync(path, "utf8");
}

function readSecretFile(path: string): string {
  return readFileSync(path, "utf8").replace(/\r?\n$/, "");
}

function errorCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}

// Only the error's code is used, never its message: a reader's message could quote what it read.
function describeFileError(err: unknown): string {
  switch (errorCode(err)) {
    case "ENOENT":
      return "it does not exist";
    case "EACCES":
    case "EPERM":
      return "permission denied (the vitalgate user must be able to read it)";
    case "EISDIR":
      return "it is a directory";
    case undefined:
      return "unreadable";
    default:
      return `unreadable (${errorCode(err)})`;
  }
}

// ---------------------------------------------------------------------------------------------------
// Positions

type Locator = (
  path: readonly PropertyKey[],
  opts?: { key?: boolean },
) => { file?: string; line?: number; col?: number };

/**
 * Finds a path's YAML node and returns its position. `key`: point at the key of the last segment
 * (an unknown key) rather than its value. A path that does not exist (a missing key) is located at
 * the deepest ancestor that does: the key that opens the parent mapping, or the mapping itself.
 */
function locator(doc: Document, lineCounter: LineCounter, file: string | undefined): Locator {
  const at = (offset: number | undefined) => {
    if (offset === undefined) return { file };
    const pos = lineCounter.linePos(offset);
    return { file, line: pos.line, col: pos.col };
  };
  return (path, opts = {}) => {
    let node: unknown = doc.contents;
    let position: number | undefined = rangeStart(node) ?? 0;
    for (let i = 0; i < path.length; i++) {
      const segment = path[i];
      const last = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => keyOf(p) === segment);
        if (!pair) return at(position);
        if (last && opts.key) return at(rangeStart(pair.key) ?? position);
        // An empty value (`port:`) has a zero-width node; its key is the better place to point.
        position = rangeStart(pair.value, true) ?? rangeStart(pair.key) ?? position;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === "number") {
        const item: unknown = node.items[segment];
        if (item === undefined) return at(position);
        position = rangeStart(item) ?? position;
        node = item;
      } else {
        return at(position);
      }
    }
    return at(position);
  };
}

function keyOf(pair: Pair): unknown {
  return isScalar(pair.key) ? pair.key.value : pair.key;
}

function rangeStart(node: unknown, nonEmpty = false): number | undefined {
  const range = (node as YamlNode | null | undefined)?.range;
  if (!range) return undefined;
  if (nonEmpty && range[0] === range[1] && isScalar(node) && node.value === null) return undefined;
  return range[0];
}

// ---------------------------------------------------------------------------------------------------
// Zod issues → errors

type Issue = z.core.$ZodIssue;

interface IssueContext {
  raw: unknown;
  root: z.ZodType;
  drivers: DriverLookup;
  locate: Locator;
  envSources: EnvSource[];
}

function issueToErrors(issue: Issue, context: IssueContext): ConfigError[] {
  const { raw, locate, envSources } = context;
  const path = issue.path.filter((s): s is string | number => typeof s !== "symbol");
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => {
      const keyPath = [...path, key];
      return attribute(
        {
          path: formatPath(keyPath),
          message: unknownKeyMessage(key, context, path),
          ...locate(keyPath, { key: true }),
        },
        keyPath,
        envSources,
      );
    });
  }
  let message = issueMessage(issue, raw, path);
  const duplicateOf =
    issue.code === "custom" ? (issue.params as { duplicateOf?: Path } | undefined)?.duplicateOf : undefined;
  if (duplicateOf) {
    const first = locate([...path.slice(0, -2), ...duplicateOf]);
    if (first.line !== undefined) message += ` (line ${first.line})`;
  }
  return [attribute({ path: formatPath(path), message, ...locate(path) }, path, envSources)];
}

/** Marks an error whose value came from an environment variable, which has no place in the file. */
function attribute(error: ConfigError, path: Path, envSources: EnvSource[]): ConfigError {
  const source = envSources.find((s) => s.path.length <= path.length && s.path.every((seg, i) => seg === path[i]));
  if (!source) return error;
  return {
    path: error.path,
    message: `${error.message} (from environment variable ${source.variable})`,
    env: source.variable,
  };
}

function issueMessage(issue: Issue, raw: unknown, path: Path): string {
  switch (issue.code) {
    case "invalid_type": {
      const actual = valueAt(raw, path);
      if (actual === undefined) return `missing required key "${String(path.at(-1) ?? "")}"`;
      return `expected ${typeName(issue.expected)}, received ${describeValueType(actual)}`;
    }
    case "invalid_value":
      return issue.values.length === 1
        ? `expected ${show(issue.values[0])}`
        : `expected one of ${issue.values.map(show).join(", ")}`;
    case "too_small":
      if (issue.origin === "string")
        return Number(issue.minimum) <= 1 ? "must not be empty" : `must be at least ${issue.minimum} characters`;
      if (issue.origin === "array" || issue.origin === "set") return `must have at least ${issue.minimum} entries`;
      return `must be ${issue.inclusive ? "at least" : "more than"} ${issue.minimum}`;
    case "too_big":
      if (issue.origin === "string") return `must be at most ${issue.maximum} characters`;
      if (issue.origin === "array" || issue.origin === "set") return `must have at most ${issue.maximum} entries`;
      return `must be ${issue.inclusive ? "at most" : "less than"} ${issue.maximum}`;
    case "invalid_union": {
      const expected = unionAlternatives(issue);
      return expected.length > 0 ? `expected ${expected.join(" or ")}` : "does not match any allowed form";
    }
    case "invalid_format":
      return issue.message.startsWith("Invalid") ? `invalid ${issue.format}` : issue.message;
    default:
      return issue.message.replace(/^Invalid input: /, "");
  }
}

function unionAlternatives(issue: z.core.$ZodIssueInvalidUnion): string[] {
  const out: string[] = [];
  for (const branch of issue.errors) {
    for (const sub of branch) {
      if (sub.path.length > 0) continue;
      if (sub.code === "invalid_value") out.push(...sub.values.map(show));
      else if (sub.code === "invalid_type") out.push(typeName(sub.expected));
    }
  }
  return [...new Set(out)];
}

function show(value: unknown): string {
  return typeof value === "string" ? value : String(value);
}

function typeName(expected: string): string {
  switch (expected) {
    case "int":
      return "integer";
    case "object":
    case "record":
      return "mapping";
    case "array":
      return "list";
    default:
      return expected;
  }
}

function describeValueType(value: unknown): string {
  if (value === null) return "an empty value";
  if (Array.isArray(value)) return "list";
  if (typeof value === "object") return "mapping";
  if (typeof value === "number" && Number.isInteger(value)) return "number";
  return typeof value;
}

const KEY_HINTS: Record<string, string> = {
  password:
    "passwords are never written in the configuration: put it in a file readable only by the vitalgate user and set passwordFile",
};

function unknownKeyMessage(key: string, context: IssueContext, parentPath: Path): string {
  const hint = KEY_HINTS[key];
  if (hint) return `unknown key "${key}": ${hint}`;
  const parent = valueAt(context.raw, parentPath);
  const present = (k: string) => typeof parent === "object" && parent !== null && k in parent;
  const suggestion = closest(
    key,
    knownKeysAt(context, parentPath).filter((k) => !present(k)),
  );
  return suggestion ? `unknown key "${key}" (did you mean "${suggestion}"?)` : `unknown key "${key}"`;
}

/** The keys the schema allows in the mapping at `path` (a device's options: its driver's). */
function knownKeysAt(context: IssueContext, path: Path): string[] {
  let schema: z.ZodType | undefined = context.root;
  for (let i = 0; i < path.length && schema; i++) {
    const def = defOf(unwrap(schema));
    const sub = path.slice(0, i + 1);
    if (isDeviceOptions(sub))
      schema = context.drivers(String(valueAt(context.raw, [...sub.slice(0, -1), "driver"])))?.options;
    else if (def.type === "object") schema = def.shape?.[String(path[i])];
    else if (def.type === "array") schema = def.element;
    else if (def.type === "record") schema = def.valueType;
    else schema = undefined;
  }
  const def = schema ? defOf(unwrap(schema)) : undefined;
  return def?.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 4)) + 1;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let node = value;
  for (const segment of path) {
    if (typeof node !== "object" || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[segment];
  }
  return node;
}

function sortByPosition(errors: ConfigError[]): ConfigError[] {
  // Stable: errors without a position (environment, file-level) keep their order after the others.
  return errors
    .map((e, i) => ({ e, i }))
    .sort((a, b) => (a.e.line ?? Infinity) - (b.e.line ?? Infinity) || (a.e.col ?? 0) - (b.e.col ?? 0) || a.i - b.i)
    .map(({ e }) => e);
}

// ---------------------------------------------------------------------------------------------------
// Environment overrides

interface SchemaDef {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
  entries?: Record<string, unknown>;
  values?: unknown[];
}

function defOf(schema: z.ZodType): SchemaDef {
  return schema._zod.def as unknown as SchemaDef;
}

/** Strips optional/default/pipe wrappers down to the schema that says what the value is. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (def.innerType) s = def.innerType;
    else if (def.type === "pipe" && def.in) s = def.in;
    else return s;
  }
}

/** Whether a value for this schema should stay the variable's raw text (`007` as an id, not the number 7). */
function wantsString(schema: z.ZodType | undefined): boolean {
  if (!schema) return false;
  const def = defOf(unwrap(schema));
  if (def.type === "string") return true;
  if (def.type === "enum") return Object.values(def.entries ?? {}).every((v) => typeof v === "string");
  if (def.type === "union") return (def.options ?? []).every((o) => wantsString(o));
  return false;
}

const normalise = (name: string) => name.toLowerCase().replace(/[-_]/g, "");

/**
 * Applies `VITALGATE__UPLINK__URL=...` style variables to the document: double underscores nest, names
 * match the schema's keys ignoring case and `_`/`-` (`PROTOCOL_VERSION` is protocolVersion), a list entry is
 * picked by index or, for devices, by id (`VITALGATE__DEVICES__MONITOR_BED1__ENABLED=false`). Values are YAML
 * scalars unless the setting is text. Empty values are ignored. Returns where each variable landed.
 */
function applyEnvironment(
  doc: Document,
  env: Record<string, string | undefined>,
  root: z.ZodType,
  drivers: DriverLookup,
  errors: ConfigError[],
): EnvSource[] {
  const sources: EnvSource[] = [];
  const names = Object.keys(env)
    .filter((n) => n.startsWith(ENV_PREFIX) && env[n] !== undefined && env[n] !== "")
    .sort();
  for (const variable of names) {
    const text = env[variable] ?? "";
    const segments = variable.slice(ENV_PREFIX.length).split("__");
    const fail = (message: string) =>
      errors.push({ path: "", message: `environment variable ${variable}: ${message}`, env: variable });
    if (segments.some((s) => s === "")) {
      fail("empty name part (use double underscores only between names)");
      continue;
    }
    let schema: z.ZodType | undefined = root;
    const path: Path = [];
    let problem: string | undefined;
    for (const segment of segments) {
      const here = doc.getIn(path);
      const def: SchemaDef | undefined = schema ? defOf(unwrap(schema)) : undefined;
      if (def?.type === "object" && def.shape) {
        const key: string | undefined = Object.keys(def.shape).find((k) => normalise(k) === normalise(segment));
        if (key === undefined) {
          problem = `no setting "${segment.toLowerCase()}" in ${path.length === 0 ? "the configuration" : formatPath(path)}`;
          break;
        }
        path.push(key);
        schema = isDeviceOptions(path)
          ? (drivers(String(doc.getIn([...path.slice(0, -1), "driver"])))?.options ?? def.shape[key])
          : def.shape[key];
      } else if (def?.type === "array" || (def === undefined && isSeq(here))) {
        const items = isSeq(here) ? here.items : [];
        const index = /^\d+$/.test(segment)
          ? Number(segment)
          : items.findIndex((item) => isMap(item) && normalise(String(item.get("id"))) === normalise(segment));
        if (index < 0 || index >= items.length) {
          problem = `${formatPath(path)} has no entry "${segment.toLowerCase()}"`;
          break;
        }
        path.push(index);
        schema = def?.element;
      } else if (def === undefined || def.type === "record") {
        // Free-form mapping (driver options without a known shape): match existing keys, else take the name as written.
        const existing = isMap(here)
          ? here.items.map(keyOf).find((k) => typeof k === "string" && normalise(k) === normalise(segment))
          : undefined;
        path.push(typeof existing === "string" ? existing : segment.toLowerCase());
        schema = def?.valueType;
      } else {
        problem = `${formatPath(path)} is a single value, it has no "${segment.toLowerCase()}"`;
        break;
      }
    }
    if (problem) {
      fail(problem);
      continue;
    }
    const value = wantsString(schema) ? text : scalarFromText(text);
    // A section left empty in the file (`uplink:`) becomes a mapping the variable can fill.
    for (let depth = 1; depth < path.length; depth++) {
      const enclosing = doc.getIn(path.slice(0, depth), true);
      if (isScalar(enclosing) && enclosing.value === null) doc.setIn(path.slice(0, depth), doc.createNode({}));
    }
    try {
      doc.setIn(path, value);
      sources.push({ variable, path });
    } catch {
      fail(`cannot set ${formatPath(path)}: an enclosing entry in the file is not a mapping`);
    }
  }
  return sources;
}

/**
 * An optional section left empty (`uplink:` with every line below it commented out) means "not set", as
 * an IT person commenting a section out would expect; an empty single value stays an error.
 */
function dropEmptySections(value: unknown, schema: z.ZodType): void {
  const def = defOf(unwrap(schema));
  if (def.type === "array" && def.element && Array.isArray(value)) {
    for (const item of value) dropEmptySections(item, def.element);
    return;
  }
  if (def.type !== "object" || !def.shape || typeof value !== "object" || value === null || Array.isArray(value))
    return;
  const record = value as Record<string, unknown>;
  for (const [key, child] of Object.entries(def.shape)) {
    if (!(key in record)) continue;
    const optional = ["optional", "default", "prefault"].includes(defOf(child).type);
    const childType = defOf(unwrap(child)).type;
    if (record[key] === null && optional && ["object", "array", "record"].includes(childType)) delete record[key];
    else dropEmptySections(record[key], child);
  }
}

function isDeviceOptions(path: Path): boolean {
  return path.length === 3 && path[0] === "devices" && typeof path[1] === "number" && path[2] === "options";
}

function scalarFromText(text: string): unknown {
  try {
    const value: unknown = parseYaml(text);
    return typeof value === "object" && value !== null ? text : value;
  } catch {
    return text;
  }
}
