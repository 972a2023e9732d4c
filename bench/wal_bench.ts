/**
 * The WAL against the disk's physical limit: the raw rate of a 4 KiB write
 * plus fdatasync into a preallocated file (what one sync costs here), next
 * to the WAL's own append rate (one Ready of one 300-byte entry, and one of
 * 64 entries, each with its one fdatasync). Run with `deno task bench`.
 */
import { Wal } from "../wal/wal.ts";
import type { Entry } from "../core/raft/types.ts";

const dir = Deno.makeTempDirSync({ prefix: "cairn-bench-wal-" });

const raw = await Deno.open(`${dir}/raw`, { create: true, read: true, write: true });
await raw.write(new Uint8Array(64 * 1024 * 1024));
await raw.sync();
const page = new Uint8Array(4096).fill(7);
let offset = 0;

Deno.bench("disk: 4 KiB write + fdatasync (preallocated file)", { group: "sync" }, async () => {
  if (offset + page.length > 64 * 1024 * 1024) {
    await raw.seek(0, Deno.SeekMode.Start);
    offset = 0;
  }
  await raw.write(page);
  offset += page.length;
  await raw.syncData();
});

const { wal } = await Wal.open(`${dir}/wal`, {
  index: 1,
  term: 1,
  confState: { voters: [1], learners: [] },
});
let index = 1;
const data = new Uint8Array(300).fill(9);
const entry = (): Entry => ({ index: ++index, term: 2, type: "normal", data });

Deno.bench(
  "wal: save one 300 B entry + hard state (one fdatasync)",
  { group: "sync" },
  async () => {
    const e = entry();
    await wal.save({ term: 2, vote: 1, commit: e.index }, [e], true);
  },
);

Deno.bench("wal: save 64 entries of 300 B + hard state (one fdatasync)", async () => {
  const es = Array.from({ length: 64 }, entry);
  await wal.save({ term: 2, vote: 1, commit: index }, es, true);
});

globalThis.addEventListener("unload", () => {
  raw.close();
  Deno.removeSync(dir, { recursive: true });
});
