/**
 * A command-line flag parser with the grammar and error text of spf13/pflag,
 * the library etcdctl's flags come from: flags and arguments interleave,
 * `--name=value` and `--name value`, booleans as `--name` or `--name=false`,
 * shorthands `-w json`, `-wjson`, `-w=json`, `--` ends the flags, and the
 * errors read as pflag writes them (`unknown flag: --foo`).
 *
 * @module
 */

import { goQuoteString, parseGoDuration, parseGoInt64, parseGoUint64 } from "./go_format.ts";

/** The value kinds etcdctl's flags use. */
export type FlagKind = "bool" | "string" | "int" | "uint" | "duration" | "stringSlice";

/** Parsed value of a flag, by kind: boolean, string, bigint (int64, uint64), number (ms), string[]. */
export type FlagValue = boolean | string | bigint | number | string[];

/** One flag: its long name, optional one-letter shorthand, kind and default. */
export interface FlagSpec {
  /** Long name, given as `--name`. */
  name: string;
  /** One-letter shorthand, given as `-x`. */
  short?: string;
  /** How the value parses. */
  kind: FlagKind;
  /** Value when the flag is not given. */
  default: FlagValue;
}

/** Result of {@linkcode parseFlags}. */
export interface ParsedFlags {
  /** Every declared flag's value: the given one, else the default. */
  values: Map<string, FlagValue>;
  /** Names of flags given on the command line. */
  changed: Set<string>;
  /** Non-flag arguments, in order. */
  args: string[];
}

/** A flag that did not parse; `message` is pflag's text. */
export class FlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FlagError";
  }
}

/**
 * Converts a flag's string form to its value, as pflag's `Set` does.
 *
 * @throws {Error} with Go's parse error text.
 */
export function convertFlagValue(kind: FlagKind, raw: string): FlagValue {
  switch (kind) {
    case "bool":
      return parseGoBool(raw);
    case "string":
      return raw;
    case "int":
      return parseGoInt64(raw);
    case "uint":
      return parseGoUint64(raw);
    case "duration":
      return parseGoDuration(raw);
    case "stringSlice":
      return raw === "" ? [] : raw.split(",");
  }
}

function parseGoBool(raw: string): boolean {
  if (["1", "t", "T", "TRUE", "true", "True"].includes(raw)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(raw)) return false;
  throw new Error(`strconv.ParseBool: parsing ${goQuoteString(raw)}: invalid syntax`);
}

function flagLabel(spec: FlagSpec): string {
  return spec.short ? `-${spec.short}, --${spec.name}` : `--${spec.name}`;
}

/**
 * Parses `argv` against `specs`, pflag style (flags may follow arguments).
 *
 * @throws {FlagError} `unknown flag: --x`, `unknown shorthand flag: 'x' in -x`,
 * `flag needs an argument: --x`, `invalid argument "v" for "--x" flag: …`.
 */
export function parseFlags(argv: readonly string[], specs: readonly FlagSpec[]): ParsedFlags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short!, s]));
  const values = new Map<string, FlagValue>(specs.map((s) => [s.name, s.default]));
  const changed = new Set<string>();
  const args: string[] = [];

  const set = (spec: FlagSpec, raw: string) => {
    let v: FlagValue;
    try {
      v = convertFlagValue(spec.kind, raw);
    } catch (e) {
      throw new FlagError(
        `invalid argument ${goQuoteString(raw)} for "${flagLabel(spec)}" flag: ${
          (e as Error).message
        }`,
      );
    }
    if (spec.kind === "stringSlice" && changed.has(spec.name)) {
      v = [...(values.get(spec.name) as string[]), ...(v as string[])];
    }
    values.set(spec.name, v);
    changed.add(spec.name);
  };

  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("--") && a.length > 2) {
      const eq = a.indexOf("=");
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const spec = byName.get(name);
      if (!spec) throw new FlagError(`unknown flag: --${name}`);
      if (eq >= 0) set(spec, a.slice(eq + 1));
      else if (spec.kind === "bool") set(spec, "true");
      else if (i + 1 < argv.length) set(spec, argv[++i]);
      else throw new FlagError(`flag needs an argument: --${name}`);
    } else if (a.startsWith("-") && a.length > 1) {
      let rest = a.slice(1);
      while (rest.length > 0) {
        const c = rest[0];
        const spec = byShort.get(c);
        if (!spec) throw new FlagError(`unknown shorthand flag: '${c}' in -${rest}`);
        rest = rest.slice(1);
        if (rest.startsWith("=")) {
          set(spec, rest.slice(1));
          rest = "";
        } else if (spec.kind === "bool") {
          set(spec, "true");
        } else if (rest.length > 0) {
          set(spec, rest);
          rest = "";
        } else if (i + 1 < argv.length) {
          set(spec, argv[++i]);
        } else {
          throw new FlagError(`flag needs an argument: '${c}' in -${c}`);
        }
      }
    } else {
      args.push(a);
    }
  }
  return { values, changed, args };
}
