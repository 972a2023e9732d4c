import { deepStrictEqual as assertEquals, throws as assertThrows } from "node:assert/strict";
import { checkPeerURLs } from "../../cli/commands/member.ts";
import { parseGoUint64 } from "../../cli/go_format.ts";
import { newPrinter } from "../../cli/printer.ts";
import type { MemberListResponse } from "../../core/api/types.ts";

const HEADER = { cluster_id: 0xabcn, member_id: 1n, revision: 0, raft_term: 2 };

function printed(format: string, print: (p: ReturnType<typeof newPrinter>) => void): string {
  let text = "";
  const out = { write: (d: Uint8Array | string) => void (text += String(d)) };
  print(newPrinter(format, out, out));
  return text;
}

Deno.test("member IDs print as Go's %16x (space-padded) and %x", () => {
  const r = { header: HEADER, members: [] };
  assertEquals(
    printed(
      "simple",
      (p) =>
        p.memberAdd({
          ...r,
          member: { ID: 0x1fn, name: "", peerURLs: [], clientURLs: [], isLearner: false },
        }),
    ),
    "Member               1f added to cluster              abc\n",
  );
  assertEquals(
    printed("simple", (p) => p.memberChanged("promoted in", 0x9ab8e853029cd446n, r)),
    "Member 9ab8e853029cd446 promoted in cluster              abc\n",
  );
  assertEquals(
    printed("simple", (p) => p.moveLeader(0xan, 0x9ab8e853029cd446n, {})),
    "Leadership transferred from a to 9ab8e853029cd446\n",
  );
});

Deno.test("member list: unstarted members, several URLs, fields and table output", () => {
  const r: MemberListResponse = {
    header: HEADER,
    members: [
      { ID: 0x10n, name: "", peerURLs: ["http://p:1"], clientURLs: [], isLearner: true },
      {
        ID: 0x2an,
        name: 'm"2',
        peerURLs: ["http://a:1", "http://b:2"],
        clientURLs: ["http://c:3"],
        isLearner: false,
      },
    ],
  };
  assertEquals(
    printed("simple", (p) => p.memberList(r)),
    '10, unstarted, , http://p:1, , true\n2a, started, m"2, http://a:1,http://b:2, http://c:3, false\n',
  );
  assertEquals(
    printed("fields", (p) => p.memberList(r)),
    '"ClusterID" : 2748\n"MemberID" : 1\n"Revision" : 0\n"RaftTerm" : 2\n' +
      '"ID" : 16\n"Name" : ""\n"PeerURL" : "http://p:1"\n"IsLearner" : true\n\n' +
      '"ID" : 42\n"Name" : "m\\"2"\n"PeerURL" : "http://a:1"\n"PeerURL" : "http://b:2"\n' +
      '"ClientURL" : "http://c:3"\n"IsLearner" : false\n\n',
  );
  assertEquals(
    printed("json", (p) => p.memberList(r)),
    '{"header":{"cluster_id":2748,"member_id":1,"raft_term":2},"members":[' +
      '{"ID":16,"peerURLs":["http://p:1"],"isLearner":true},' +
      '{"ID":42,"name":"m\\"2","peerURLs":["http://a:1","http://b:2"],"clientURLs":["http://c:3"]}]}\n',
  );
});

Deno.test("peer URLs are checked as etcd's types.NewURLs does", () => {
  checkPeerURLs([
    "http://127.0.0.1:2380",
    " https://h:1 ",
    "unix://s:0",
    "http://[::1]:2380",
    "http://h:",
  ]);
  const cases: [string, string][] = [
    ["foo", "URL scheme must be http, https, unix, or unixs: foo"],
    ["ftp://h:1", "URL scheme must be http, https, unix, or unixs: ftp://h:1"],
    ["http://h", 'URL address does not have the form "host:port": http://h'],
    ["http://::1:2", 'URL address does not have the form "host:port": http://::1:2'],
    ["http:h:1", 'URL address does not have the form "host:port": http:h:1'],
    ["http://h:1/", "URL must not contain a path: http://h:1/"],
    ["http://h:1/p?q", "URL must not contain a path: http://h:1/p?q"],
  ];
  for (const [url, message] of cases) {
    assertThrows(() => checkPeerURLs(["http://ok:1", url]), { message, exitCode: 1 }, url);
  }
});

Deno.test("parseGoUint64 parses hex IDs as strconv.ParseUint", () => {
  assertEquals(parseGoUint64("ffffffffffffffff", 16), 0xffffffffffffffffn);
  assertEquals(parseGoUint64("0A", 16), 10n);
  for (
    const [s, why] of [
      ["", "invalid syntax"],
      ["-1", "invalid syntax"],
      ["0x1", "invalid syntax"],
      ["1_0", "invalid syntax"],
      ["10000000000000000", "value out of range"],
    ]
  ) {
    assertThrows(() => parseGoUint64(s, 16), {
      message: `strconv.ParseUint: parsing "${s}": ${why}`,
    });
  }
});
