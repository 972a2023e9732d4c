/**
 * A lock contender for tests/integration/lock_test.ts, run as its own
 * process: `deno run --allow-net lock_client.ts <url> <name> <clients>
 * <rounds>`. Each of `clients` concurrent clients (one HTTP connection per
 * request) takes lock `name` `rounds` times under a lease of its own and,
 * while it holds it: reads its fencing revision (its lock key's create
 * revision), writes it to key `fence` (the value it replaces must be
 * lower), increments key `counter` by a read and a later write (two
 * holders at once would lose an increment), and checks that key `owner`,
 * which it set, was not set by anyone else meanwhile. Prints one JSON line:
 * `{"fences":[…],"violations":[…]}`.
 *
 * @module
 */
const [url, name, clients, rounds] = Deno.args;
const b64 = (s: string) => btoa(s);
const unb64 = (s: string | undefined) => (s === undefined ? "" : atob(s));

/** The fields of the gateway's answers this client reads. */
interface Reply {
  ID?: string;
  key?: string;
  kvs?: { create_revision: string; value?: string }[];
  prev_kv?: { value?: string };
}

async function post(path: string, body: unknown): Promise<Reply> {
  const res = await fetch(url + path, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { connection: "close" },
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const fences: number[] = [];
const violations: string[] = [];

async function client(): Promise<void> {
  for (let i = 0; i < Number(rounds); i++) {
    const lease = (await post("/v3/lease/grant", { TTL: 30 })).ID;
    const { key } = await post("/v3/lock/lock", { name: b64(name), lease });
    const fence = Number((await post("/v3/kv/range", { key })).kvs![0].create_revision);
    fences.push(fence);
    const prev = await post("/v3/kv/put", {
      key: b64("fence"),
      value: b64(String(fence)),
      prev_kv: true,
    });
    const before = Number(unb64(prev.prev_kv?.value) || "0");
    if (before >= fence) violations.push(`fence ${fence} replaced ${before}`);
    await post("/v3/kv/put", { key: b64("owner"), value: b64(String(fence)) });
    const counter = await post("/v3/kv/range", { key: b64("counter") });
    const n = Number(unb64(counter.kvs?.[0]?.value) || "0");
    await new Promise((r) => setTimeout(r, 2));
    await post("/v3/kv/put", { key: b64("counter"), value: b64(String(n + 1)) });
    const owner = await post("/v3/kv/range", { key: b64("owner") });
    const now = unb64(owner.kvs?.[0]?.value);
    if (now !== String(fence)) violations.push(`holder ${fence} saw owner ${now}`);
    await post("/v3/lock/unlock", { key });
    await post("/v3/lease/revoke", { ID: lease });
  }
}

await Promise.all(Array.from({ length: Number(clients) }, client));
console.log(JSON.stringify({ fences, violations }));
