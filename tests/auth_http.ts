/**
 * The JSON gateway as the auth tests use it: a POST with a token in
 * `Authorization`, and answers masked for comparing etcd's with cairn's.
 *
 * @module
 */
import type { ServerProcess } from "./servers.ts";

/** A gateway answer: its status and body text. */
export interface Answer {
  status: number;
  text: string;
}

/** POST `body` to `path` of `server` (with `token` in `Authorization`); the status and body text. */
export async function post(
  server: ServerProcess,
  path: string,
  body: unknown,
  token?: string,
): Promise<Answer> {
  const res = await fetch(`${server.url}${path}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: token === undefined ? {} : { Authorization: token },
  });
  return { status: res.status, text: await res.text() };
}

/**
 * `answer` with header IDs and the term masked, and a token shown as
 * `<token>` (a `simple` token) or `<jwt>`.
 */
export function masked(answer: Answer): Answer {
  const text = answer.text
    .replace(/"cluster_id":"\d+"/, '"cluster_id":"<c>"')
    .replace(/"member_id":"\d+"/, '"member_id":"<m>"')
    .replace(/"raft_term":"\d+"/, '"raft_term":"<t>"')
    .replace(/"token":"[A-Za-z]{16}\.\d+"/, '"token":"<token>"')
    .replace(/"token":"[\w-]+\.[\w-]+\.[\w-]+"/, '"token":"<jwt>"');
  return { status: answer.status, text };
}
