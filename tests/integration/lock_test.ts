/**
 * Lock and election on a cairn server with HTTP worker threads: one lock
 * contended by clients in several processes is never held by two at once
 * (fencing revisions strictly increase, no lost update), a waiter whose
 * lease ends leaves the queue, a client that goes away leaves it too, and
 * Observe streams leader changes.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { ROOT, type ServerProcess, startCairn } from "../servers.ts";

const b64 = (s: string) => btoa(s);

/** The fields of the gateway's answers these tests read. */
interface Reply {
  key?: string;
  leader?: unknown;
  kvs?: { value: string }[];
  error?: string;
}

async function withServer(fn: (server: ServerProcess) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "cairn-lock-" });
  const server = await startCairn(dir, ["--http-workers", "4"]);
  try {
    await fn(server);
  } finally {
    await server.kill();
    await Deno.remove(dir, { recursive: true });
  }
}

async function post(
  url: string,
  path: string,
  body: unknown,
  signal?: AbortSignal,
): Promise<{ status: number; json: Reply }> {
  const res = await fetch(url + path, { method: "POST", body: JSON.stringify(body), signal });
  return { status: res.status, json: await res.json() };
}

async function exists(url: string, key: string): Promise<boolean> {
  const { json } = await post(url, "/v3/kv/range", { key: b64(key) });
  return (json.kvs?.length ?? 0) > 0;
}

async function until(cond: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await cond())) {
    assert(Date.now() < deadline, "timed out");
    await new Promise((r) => setTimeout(r, 20));
  }
}

Deno.test("lock: 4 processes × 4 clients contend; one holder at a time, fencing revisions rise", async () => {
  await withServer(async (server) => {
    const processes = 4;
    const clients = 4;
    const rounds = 5;
    const outputs = await Promise.all(Array.from({ length: processes }, async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-net",
          `${ROOT}tests/integration/lock_client.ts`,
          server.url,
          "contended",
          String(clients),
          String(rounds),
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert(out.success, stderr);
      return JSON.parse(new TextDecoder().decode(out.stdout)) as {
        fences: number[];
        violations: string[];
      };
    }));
    const total = processes * clients * rounds;
    assertEquals(outputs.flatMap((o) => o.violations), []);
    const fences = outputs.flatMap((o) => o.fences);
    assertEquals(new Set(fences).size, total);
    const { json } = await post(server.url, "/v3/kv/range", { key: b64("counter") });
    assertEquals(atob(json.kvs![0].value), String(total));
    const fence = await post(server.url, "/v3/kv/range", { key: b64("fence") });
    assertEquals(Number(atob(fence.json.kvs![0].value)), Math.max(...fences));
  });
});

Deno.test("lock: waiters whose lease ends, or whose client goes away, leave the queue", async () => {
  await withServer(async (server) => {
    const url = server.url;
    await post(url, "/v3/lease/grant", { TTL: 30, ID: "1" });
    await post(url, "/v3/lease/grant", { TTL: 2, ID: "2" });
    await post(url, "/v3/lease/grant", { TTL: 30, ID: "3" });
    await post(url, "/v3/lease/grant", { TTL: 30, ID: "4" });
    const holder = await post(url, "/v3/lock/lock", { name: b64("q"), lease: "1" });
    assertEquals(holder.status, 200);
    const expiring = post(url, "/v3/lock/lock", { name: b64("q"), lease: "2" });
    await until(() => exists(url, "q/2"));
    const abort = new AbortController();
    const leaving = post(url, "/v3/lock/lock", { name: b64("q"), lease: "3" }, abort.signal);
    await until(() => exists(url, "q/3"));
    const last = post(url, "/v3/lock/lock", { name: b64("q"), lease: "4" });
    await until(() => exists(url, "q/4"));
    abort.abort();
    await leaving.catch(() => {});
    await until(async () => !(await exists(url, "q/3")));
    const expired = await expiring;
    assertEquals(expired.status, 500);
    assertEquals(expired.json, {
      error: "mutex: session is expired",
      message: "mutex: session is expired",
      code: 2,
    });
    assert(!(await exists(url, "q/2")));
    await post(url, "/v3/lock/unlock", { key: holder.json.key });
    const got = await last;
    assertEquals([got.status, atob(got.json.key!)], [200, "q/4"]);
  });
});

Deno.test("election: observe streams each leader and each proclamation", async () => {
  await withServer(async (server) => {
    const url = server.url;
    await post(url, "/v3/lease/grant", { TTL: 30, ID: "16" });
    await post(url, "/v3/lease/grant", { TTL: 30, ID: "32" });
    const abort = new AbortController();
    const res = await fetch(url + "/v3/election/observe", {
      method: "POST",
      body: JSON.stringify({ name: b64("e") }),
      signal: abort.signal,
    });
    const lines: string[] = [];
    const reading = (async () => {
      let buffer = "";
      try {
        for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
          buffer += chunk;
          let nl;
          while ((nl = buffer.indexOf("\n")) >= 0) {
            const kv = JSON.parse(buffer.slice(0, nl)).result.kv;
            lines.push(`${atob(kv.key)}=${atob(kv.value)}`);
            buffer = buffer.slice(nl + 1);
          }
        }
      } catch {
        // aborted
      }
    })();
    const a = await post(url, "/v3/election/campaign", {
      name: b64("e"),
      lease: "16",
      value: b64("a1"),
    });
    await post(url, "/v3/election/proclaim", { leader: a.json.leader, value: b64("a2") });
    const b = post(url, "/v3/election/campaign", { name: b64("e"), lease: "32", value: b64("b") });
    await until(() => exists(url, "e/20"));
    await post(url, "/v3/lease/revoke", { ID: "16" });
    assertEquals((await b).status, 200);
    await until(() => Promise.resolve(lines.length >= 3));
    abort.abort();
    await reading;
    assertEquals(lines, ["e/10=a1", "e/10=a2", "e/20=b"]);
  });
});
