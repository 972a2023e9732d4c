/**
 * gRPC clients that close their connections do not take the member down.
 * grpc-js clients send GOAWAY as they close; Deno's node:http2 (nghttp2)
 * aborted the whole process when such a GOAWAY met streams it had not
 * finished (`find_stream_on_goaway_func` assertion), seen at the end of
 * bench/grpc.ts runs (64 calls in flight over 8 connections, then closed).
 * server/grpc/authority.ts now drops clients' GOAWAY frames. The load
 * generator runs here several times against one member, which must be
 * serving after each.
 */
import assert from "node:assert/strict";
import { ROOT, startCairn } from "../servers.ts";

Deno.test({
  name: "gRPC: grpc-js clients closing after a load leave the member serving",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cairn-goaway-" });
    const server = await startCairn(dir);
    try {
      const exited = server.child.status.then((s) => `exited ${s.code}`);
      for (let round = 0; round < 4; round++) {
        const load = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            `${ROOT}bench/grpc.ts`,
            "--endpoint",
            server.endpoint,
            "--op",
            round % 2 === 0 ? "range" : "put",
            "--seconds",
            "1",
          ],
          cwd: ROOT,
          stdout: "piped",
          stderr: "piped",
        }).output();
        await new Promise((r) => setTimeout(r, 300));
        const state = await Promise.race([exited, Promise.resolve("running")]);
        assert.equal(
          state,
          "running",
          `round ${round}: the member died; load: ${new TextDecoder().decode(load.stdout)}`,
        );
        const health = await fetch(`${server.url}/health`);
        assert.equal(await health.text(), '{"health":"true"}');
      }
    } finally {
      await server.kill();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
