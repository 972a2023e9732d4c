/**
 * `deno task compile`: builds `./cairn`, one executable that runs the server
 * (`cairn [flags]`) and the client (`cairn ctl …`). It carries the
 * protobuf files of the gRPC server, the HTTP worker module (workers are
 * loaded by URL, so `deno compile` must be told to include them) and the
 * npm packages, lmdb's native addon among them (Deno extracts native
 * addons from the executable when they load).
 *
 * `deno compile` writes the program into a copy of `denort`, Deno's runtime
 * without its tools, which it downloads from dl.deno.land for the Deno that
 * compiles, unless DENORT_BIN names a local copy. When it cannot get it,
 * this script says so and how to fix it, instead of deno's network error.
 *
 * Usage: `deno task compile [--output PATH] [--target TRIPLE]`.
 *
 * @module
 */

const FLAGS = [
  "--allow-net",
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-env",
  "--allow-sys",
];
const INCLUDES = ["server/grpc/proto/", "server/http_worker.ts"];

/** Whether deno compile's failure `text` is about getting its denort base binary. */
export function isDenortFailure(text: string): boolean {
  return /denort|Setting up base binary|dl\.deno\.land/i.test(text);
}

/** The message that explains a denort failure (`cause`: deno's last error line). */
export function denortHelp(cause: string, denoVersion: string, target: string): string {
  return [
    `cairn: deno compile could not get its runtime, denort ${denoVersion} for ${target}: ${cause}`,
    "Fix: let this machine reach https://dl.deno.land, or download " +
    `https://dl.deno.land/release/v${denoVersion}/denort-${target}.zip on one that can, ` +
    "unzip it here and run again with DENORT_BIN=/path/to/denort.",
  ].join("\n");
}

if (import.meta.main) {
  const root = new URL("../", import.meta.url);
  const args = [...Deno.args];
  if (!args.includes("--output") && !args.some((a) => a.startsWith("--output="))) {
    args.push("--output", "cairn");
  }
  const t = args.indexOf("--target");
  const target = t >= 0 && t + 1 < args.length ? args[t + 1] : Deno.build.target;
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      ...FLAGS,
      ...INCLUDES.flatMap((p) => ["--include", p]),
      ...args,
      "main.ts",
    ],
    cwd: root,
    stdout: "inherit",
    stderr: "piped",
  });
  const out = await cmd.output();
  const stderr = new TextDecoder().decode(out.stderr);
  if (out.code !== 0 && isDenortFailure(stderr)) {
    // deno's own lines first (they name the URL), then what to do.
    // deno-lint-ignore no-control-regex -- ANSI colour codes (ESC [ … m) are control characters
    const plain = stderr.replace(/\x1b\[[0-9;]*m/g, "");
    const lines = plain.split("\n").map((l) => l.trim().replace(/^\d+: /, ""));
    const cause = lines.find((l) => /error sending request/i.test(l)) ??
      lines.find((l) => /error/i.test(l)) ?? "download failed";
    console.error(plain.trimEnd());
    console.error(denortHelp(cause, Deno.version.deno, target));
    Deno.exit(1);
  }
  await Deno.stderr.write(out.stderr);
  Deno.exit(out.code);
}
