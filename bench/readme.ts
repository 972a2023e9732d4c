/**
 * The benchmark scripts' share of bench/README.md: each rewrites the text
 * between its own `<!-- name:begin -->` and `<!-- name:end -->` markers, as
 * bench/load.sh does.
 *
 * @module
 */

/**
 * Replace the section of bench/README.md between the markers of `name`
 * (e.g. `grpc.ts`) with `text`, then format the file; a README without the
 * markers is left as it is (and said so on stdout).
 */
export async function rewriteReadmeSection(name: string, text: string): Promise<void> {
  const readme = new URL("./README.md", import.meta.url).pathname;
  const start = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const old = await Deno.readTextFile(readme);
  const i = old.indexOf(start);
  const j = old.indexOf(end);
  if (i < 0 || j < i) {
    console.log(`bench/README.md has no ${start} … ${end} section; not rewritten`);
    return;
  }
  await Deno.writeTextFile(
    readme,
    `${old.slice(0, i + start.length)}\n\n${text}\n\n${old.slice(j)}`,
  );
  await new Deno.Command(Deno.execPath(), { args: ["fmt", readme], stdout: "null", stderr: "null" })
    .output();
}
