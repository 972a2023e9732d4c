import assert from "node:assert/strict";
import {
  ConfigError,
  envName,
  FLAGS,
  flagValues,
  parseAuthToken,
  parseConfig,
  parseGoDuration,
  resolveLogOutputs,
} from "../../server/config.ts";
import { HAVE_ETCD } from "../servers.ts";

Deno.test("config: etcd's defaults, data dir default.cairn", () => {
  const c = parseConfig([], {});
  assert.equal(c.name, "default");
  assert.equal(c.dataDir, "default.cairn");
  assert.deepEqual(c.listenClientUrls.map((u) => u.href), ["http://localhost:2379/"]);
  assert.deepEqual(c.initialAdvertisePeerUrls.map((u) => u.origin), ["http://localhost:2380"]);
  assert.deepEqual([...c.initialCluster.keys()], ["default"]);
  assert.equal(c.initialClusterToken, "etcd-cluster");
  assert.deepEqual([c.heartbeatIntervalMs, c.electionTimeoutMs], [100, 1000]);
  assert.deepEqual([c.maxRequestBytes, c.maxTxnOps, c.snapshotCount], [1572864, 128, 100000]);
  assert.equal(c.autoCompactionRetention, 0);
  assert.equal(c.httpWorkers, 2);
  assert.equal(c.quotaBackendBytes, 0);
  assert.equal(c.corruptCheckMs, 0);
  assert.equal(
    parseConfig(["--experimental-corrupt-check-time", "1m30s"], {}).corruptCheckMs,
    90_000,
  );
  assert.equal(parseConfig(["--experimental-corrupt-check-time", "0"], {}).corruptCheckMs, 0);
  assert.throws(
    () => parseConfig(["--experimental-watch-progress-notify-interval", "0s"], {}),
    ConfigError,
  );
});

Deno.test("config: flags in both spellings, ETCD_* variables, flags win", () => {
  const c = parseConfig(
    [
      "--name=n1",
      "-data-dir",
      "/tmp/x",
      "--max-txn-ops",
      "7",
      "--initial-cluster",
      "n1=http://localhost:2380",
    ],
    { ETCD_NAME: "ignored", ETCD_MAX_REQUEST_BYTES: "1024", ETCD_AUTO_COMPACTION_RETENTION: "2" },
  );
  assert.equal(c.name, "n1");
  assert.equal(c.dataDir, "/tmp/x");
  assert.equal(c.maxTxnOps, 7);
  assert.equal(c.maxRequestBytes, 1024);
  assert.equal(c.autoCompactionRetention, 2 * 3_600_000);
  assert.equal(envName("listen-client-urls"), "ETCD_LISTEN_CLIENT_URLS");
  assert.equal(parseConfig([], { ETCD_NAME: "n2" }).dataDir, "n2.cairn");
});

Deno.test("config: bad values are refused with etcd-like messages", () => {
  const bad: [string[], RegExp][] = [
    [["--bogus", "1"], /bogus/],
    [["--listen-client-urls", "not a url"], /listen-client-urls/],
    [["--initial-cluster", "other=http://localhost:2380"], /couldn't find local name "default"/],
    [
      ["--initial-cluster", "default=http://10.0.0.1:2380"],
      /missing from --initial-advertise-peer-urls/,
    ],
    [["--initial-cluster-state", "maybe"], /initial-cluster-state/],
    [["--election-timeout", "300"], /at least as 5 times/],
    [["--max-txn-ops", "many"], /max-txn-ops/],
    // etcd declares these unsigned: Go's flag parsing refuses a sign or a fraction.
    [["--max-txn-ops=-1"], /^invalid value "-1" for flag -max-txn-ops: parse error$/],
    [
      ["--max-request-bytes", "1.5"],
      /^invalid value "1.5" for flag -max-request-bytes: parse error$/,
    ],
    [["--snapshot-count=-5"], /^invalid value "-5" for flag -snapshot-count: parse error$/],
    [["--heartbeat-interval=-100"], /heartbeat-interval: parse error/],
    [["--auto-compaction-mode", "revision", "--auto-compaction-retention", "1h"], /retention/],
    // etcd 3.4's message for an https client URL without a certificate.
    [
      ["--listen-client-urls", "https://127.0.0.1:2379"],
      /^TLS key\/cert \(--cert-file, --key-file\) must be provided for client url https:\/\/127\.0\.0\.1:2379 with HTTPS scheme$/,
    ],
    [
      ["--client-cert-auth=yes"],
      /^invalid boolean value "yes" for -client-cert-auth: parse error$/,
    ],
  ];
  for (const [args, message] of bad) {
    assert.throws(() => parseConfig(args, {}), (err: unknown) => {
      assert.ok(err instanceof ConfigError, String(err));
      assert.match(err.message, message);
      return true;
    }, args.join(" "));
  }
});

Deno.test("config: TLS flags as etcd's: boolean flags alone or with a value, https URLs with a certificate or --auto-tls", () => {
  const https = ["--listen-client-urls", "https://127.0.0.1:2379"];
  const c = parseConfig([
    ...https,
    "--cert-file",
    "s.pem",
    "--key-file",
    "s-key.pem",
    "--trusted-ca-file",
    "ca.pem",
    "--client-cert-auth",
  ], {});
  assert.equal(c.certFile, "s.pem");
  assert.equal(c.keyFile, "s-key.pem");
  assert.equal(c.trustedCaFile, "ca.pem");
  assert.equal(c.clientCertAuth, true);
  assert.equal(c.autoTls, false);
  assert.equal(parseConfig([...https, "-auto-tls"], {}).autoTls, true);
  assert.equal(parseConfig(["--client-cert-auth=false"], {}).clientCertAuth, false);
  assert.equal(parseConfig([], { ETCD_CLIENT_CERT_AUTH: "true" }).clientCertAuth, true);
  assert.equal(parseConfig([], {}).clientCertAuth, false);
});

Deno.test("config: peer TLS flags and ETCD_PEER_* variables; https peer URLs need a certificate or --peer-auto-tls", () => {
  const https = "https://127.0.0.1:2380";
  const peer = ["--listen-peer-urls", https, "--initial-advertise-peer-urls", https];
  const c = parseConfig([...peer, "--peer-cert-file", "p.pem", "--peer-key-file", "p-key.pem"], {
    ETCD_PEER_TRUSTED_CA_FILE: "ca.pem",
    ETCD_PEER_CLIENT_CERT_AUTH: "true",
  });
  assert.equal(c.peerCertFile, "p.pem");
  assert.equal(c.peerKeyFile, "p-key.pem");
  assert.equal(c.peerTrustedCaFile, "ca.pem");
  assert.equal(c.peerClientCertAuth, true);
  assert.equal(c.peerAutoTls, false);
  assert.equal(parseConfig([...peer, "--peer-auto-tls"], {}).peerAutoTls, true);
  assert.throws(
    () => parseConfig(peer, {}),
    /^ConfigError: cannot listen on TLS for 127\.0\.0\.1:2380: KeyFile and CertFile are not presented$/,
  );
  assert.throws(
    () => parseConfig(["--peer-cert-file", "p.pem"], {}),
    /KeyFile and CertFile must both be present\[key: , cert: p\.pem\]/,
  );
});

Deno.test("config: --cipher-suites takes Go's names, in order, and refuses others with etcd's text", () => {
  assert.deepEqual(
    parseConfig([
      "--cipher-suites",
      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305",
    ], {}).cipherSuites,
    [0xc02f, 0xcca9],
  );
  assert.deepEqual(parseConfig([], {}).cipherSuites, []);
  assert.throws(
    () => parseConfig([], { ETCD_CIPHER_SUITES: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,RC4" }),
    /unexpected TLS cipher suite "RC4"/,
  );
});

Deno.test("config: --log-level takes etcd's levels; given flags and every flag's value are reported", () => {
  assert.throws(() => parseConfig(["--log-level", "bogus"], {}), /unknown level "bogus"/);
  const c = parseConfig(["--log-level", "warn", "--quota-backend-bytes", "8"], {
    ETCD_SNAPSHOT_COUNT: "5",
  });
  assert.equal(c.logLevel, "warn");
  assert.deepEqual(c.givenFlags, ["snapshot-count", "quota-backend-bytes", "log-level"]);
  const values = flagValues(c);
  assert.deepEqual(Object.keys(values).sort(), Object.keys(FLAGS).sort());
  assert.equal(values["quota-backend-bytes"], 8);
  assert.deepEqual(values["listen-client-urls"], ["http://localhost:2379/"]);
  assert.equal(values["initial-cluster"], "default=http://localhost:2380/");
  assert.equal(parseConfig([], {}).logLevel, "info");
});

Deno.test("config: --logger and --log-outputs as etcd 3.4 checks them", () => {
  assert.deepEqual(resolveLogOutputs("zap", "default"), ["stderr"]);
  assert.deepEqual(resolveLogOutputs("zap", "stdout,/var/log/c.log,stdout"), [
    "/var/log/c.log",
    "stdout",
  ]);
  assert.deepEqual(resolveLogOutputs("zap", "stderr,/dev/null"), []);
  assert.deepEqual(resolveLogOutputs("zap", "systemd/journal"), ["stderr"]);
  assert.deepEqual(resolveLogOutputs("capnslog", "stdout"), ["stdout"]);
  const refused: [string, "zap" | "capnslog", string][] = [
    ["default,stderr", "zap", 'multi logoutput for "default" is not supported yet'],
    [
      "stderr,systemd/journal",
      "zap",
      `running with systemd/journal but other '--log-outputs' values (["stderr" "systemd/journal"]) are configured with 'default'; override 'default' value with something else`,
    ],
    [
      "stderr,stdout",
      "capnslog",
      `--logger=capnslog supports only 1 value in '--log-outputs', got ["stderr" "stdout"]`,
    ],
    [
      "/tmp/x.log",
      "capnslog",
      `unknown log-output "/tmp/x.log" (only supports "default", "stderr", "stdout")`,
    ],
  ];
  for (const [value, logger, message] of refused) {
    assert.throws(() => resolveLogOutputs(logger, value), (err: Error) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.message, message);
      return true;
    });
  }
  assert.throws(() => parseConfig(["--logger", "foo"], {}), /unknown logger option "foo"/);
  const c = parseConfig(["--log-outputs", "stdout"], { ETCD_LOGGER: "capnslog" });
  assert.equal(c.logger, "capnslog");
  assert.deepEqual(c.logOutputs, ["stdout"]);
  assert.equal(c.warningApplyDurationMs, 100);
  assert.equal(
    parseConfig(["--experimental-warning-apply-duration", "1.5s"], {}).warningApplyDurationMs,
    1500,
  );
});

Deno.test("config: --auth-token simple, or jwt with etcd's options and errors", () => {
  assert.deepEqual(parseConfig([], {}).authToken, { type: "simple" });
  assert.deepEqual(parseAuthToken("simple,ttl=1m"), { type: "simple" });
  assert.deepEqual(
    parseConfig(["--auth-token", "jwt,pub-key=a.pub,priv-key=a.pem,sign-method=ES384"], {})
      .authToken,
    {
      type: "jwt",
      signMethod: "ES384",
      pubKeyFile: "a.pub",
      privKeyFile: "a.pem",
      ttlMs: 300_000,
      unknownOptions: [],
    },
  );
  assert.deepEqual(
    parseConfig([], { ETCD_AUTH_TOKEN: "jwt,sign-method=HS256,priv-key=k,ttl=1m30s,x=1,y=" })
      .authToken,
    {
      type: "jwt",
      signMethod: "HS256",
      pubKeyFile: "",
      privKeyFile: "k",
      ttlMs: 90_000,
      unknownOptions: ["x", "y"],
    },
  );
  const ttl = (t: string) => {
    const c = parseAuthToken(`jwt,sign-method=RS256,ttl=${t}`);
    return c.type === "jwt" ? c.ttlMs : undefined;
  };
  assert.deepEqual([ttl("0"), ttl("0s"), ttl("-2s"), ttl("1.5s"), ttl(".5m"), ttl("10ms")], [
    0,
    0,
    -2000,
    1500,
    30_000,
    10,
  ]);
  for (
    const raw of [
      "",
      "Simple",
      "jwt",
      "jwt,sign-method=",
      "jwt,sign-method=rs256",
      "jwt,sign-method=EdDSA",
      "jwt,sign-method=RS256,ttl=5",
      "jwt,sign-method=RS256,ttl=5x",
      "jwt,sign-method=RS256,pub-key=a=b",
      "jwt,sign-method=RS256,pub-key",
      "jwt,sign-method=RS256,sign-method=RS256",
      "simple,",
    ]
  ) {
    assert.throws(
      () => parseConfig(["--auth-token", raw], {}),
      (e: Error) => e instanceof ConfigError && e.message === "auth: invalid auth options",
      raw,
    );
  }
  assert.throws(
    () => parseAuthToken("jwt,sign-method=none"),
    /^ConfigError: unsupported signing method: \*jwt\.signingMethodNone$/,
  );
});

Deno.test("config: Go durations as time.ParseDuration reads them", () => {
  assert.equal(parseGoDuration("1h2m3s4ms"), 3_723_004);
  assert.equal(parseGoDuration("+5m"), 300_000);
  assert.equal(parseGoDuration("1500us"), 1.5);
  assert.equal(parseGoDuration("2µs"), 0.002);
  for (const bad of ["", "-", "0x", "5", ".s", "1.5", "1d", "1s ", " 1s", "1sm"]) {
    assert.equal(parseGoDuration(bad), undefined, bad);
  }
});

Deno.test("config: --debug, --pre-vote and --wal-dir are in effect", () => {
  const c = parseConfig([], {});
  assert.equal(c.preVote, true);
  assert.equal(c.walDir, "default.cairn/member/wal");
  assert.equal(c.logLevel, "info");
  const d = parseConfig(
    ["--debug", "--pre-vote=false", "--wal-dir", "/fast/wal", "--data-dir", "/d"],
    {},
  );
  assert.deepEqual([d.logLevel, d.preVote, d.walDir], ["debug", false, "/fast/wal"]);
  assert.equal(parseConfig([], { ETCD_WAL_DIR: "/w" }).walDir, "/w");
  assert.equal(flagValues(d)["wal-dir"], "/fast/wal");
});

Deno.test("config: etcd's other flags are accepted with etcd's types, or refused saying why", () => {
  // What a kubeadm (1.2x) etcd manifest and common systemd units pass.
  const c = parseConfig([
    "--experimental-initial-corrupt-check=true",
    "--snapshot-count=10000",
    "--strict-reconfig-check=false",
    "--max-snapshots",
    "3",
    "--max-wals=0",
    "--grpc-keepalive-min-time=10s",
    "--grpc-keepalive-interval",
    "1h",
    "--grpc-keepalive-timeout=0",
    "--metrics=extensive",
    "--enable-pprof",
    "--enable-v2=false",
    "--backend-batch-interval=10ms",
    "--experimental-backend-bbolt-freelist-type=map",
    "--max-concurrent-streams=100",
  ], { ETCD_INITIAL_ELECTION_TICK_ADVANCE: "false", ETCD_CORS: "https://a.example" });
  assert.equal(c.initialCorruptCheck, true);
  assert.equal(c.compat["max-snapshots"], 3);
  assert.equal(c.compat["metrics"], "extensive");
  assert.equal(c.compat["initial-election-tick-advance"], false);
  assert.equal(c.compat["cors"], "https://a.example");
  assert.equal(flagValues(c)["max-wals"], 0);
  // Each has its etcd default when not given.
  const d = parseConfig([], {});
  for (const [flag, spec] of Object.entries(FLAGS)) {
    if ("compatOnly" in spec) assert.equal(flagValues(d)[flag as keyof typeof FLAGS], spec.default);
  }
  const refused: [string[], RegExp][] = [
    [["--enable-pprof=maybe"], /invalid boolean value "maybe" for -enable-pprof: parse error/],
    [["--max-wals=-1"], /invalid value "-1" for flag -max-wals: parse error/],
    [["--grpc-keepalive-timeout=20"], /invalid value "20" for flag -grpc-keepalive-timeout/],
    [["--metrics=all"], /invalid value "all" for flag -metrics/],
    [["--force-new-cluster"], /no --force-new-cluster/],
    [["--discovery=https://discovery.etcd.io/x"], /does not bootstrap by discovery/],
    [["--discovery-srv=example.com"], /does not bootstrap by DNS discovery/],
    [["--proxy=on"], /does not run as etcd's v2 proxy/],
    [["--proxy=sideways"], /invalid value "sideways" for flag -proxy/],
  ];
  for (const [args, message] of refused) {
    assert.throws(
      () => parseConfig(args, {}),
      (e) => e instanceof ConfigError && message.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test({
  name: "config: every flag etcd 3.4's --help lists is a cairn flag",
  ignore: !HAVE_ETCD,
  async fn() {
    const out = await new Deno.Command("etcd", {
      args: ["--help"],
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const help = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    const etcdFlags = new Set([...help.matchAll(/^\s+--([a-z0-9-]+)/gm)].map((m) => m[1]));
    // The help's first and last flags were read.
    assert.ok(etcdFlags.has("name") && etcdFlags.has("proxy-read-timeout"), [...etcdFlags].join());
    const missing = [...etcdFlags].filter((f) => !(f in FLAGS) && f !== "version");
    assert.deepEqual(missing, []);
  },
});

Deno.test("config: --config-file reads etcd's YAML file; flags and ETCD_* variables are then ignored", () => {
  const dir = Deno.makeTempDirSync({ prefix: "cairn-config-file-" });
  try {
    const file = `${dir}/etcd.conf.yml`;
    Deno.writeTextFileSync(
      file,
      [
        "name: 'n1'",
        "data-dir:", // empty: the default
        "snapshot-count: 10000",
        "listen-client-urls: http://127.0.0.1:2379,http://10.0.0.5:2379",
        "initial-advertise-peer-urls: http://10.0.0.5:2380",
        "initial-cluster: n1=http://10.0.0.5:2380",
        "initial-cluster-state: 'new'",
        "strict-reconfig-check: false",
        "enable-v2: true",
        "grpc-keepalive-timeout: 20000000000", // a Go duration: nanoseconds
        "experimental-watch-progress-notify-interval: 5000000000",
        "log-outputs: [stderr]",
        "cipher-suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256]",
        'auto-compaction-retention: "1"',
        "some-future-key: 1", // unknown keys are ignored, as by etcd
        "client-transport-security:",
        "  cert-file: /etc/cairn/server.pem",
        "  key-file: /etc/cairn/server-key.pem",
        "  client-cert-auth: true",
        "  trusted-ca-file: /etc/cairn/ca.pem",
        "peer-transport-security:",
        "  auto-tls: true",
        "",
      ].join("\n"),
    );
    const c = parseConfig(["--config-file", file, "--name", "ignored"], { ETCD_NAME: "ignored" });
    assert.equal(c.configFile, file);
    assert.equal(c.name, "n1");
    assert.equal(c.dataDir, "n1.cairn");
    assert.equal(c.snapshotCount, 10000);
    assert.deepEqual(c.listenClientUrls.map((u) => u.host), ["127.0.0.1:2379", "10.0.0.5:2379"]);
    assert.equal(c.compat["strict-reconfig-check"], false);
    assert.equal(c.compat["enable-v2"], true);
    assert.equal(c.compat["grpc-keepalive-timeout"], "20000000000ns");
    assert.equal(c.watchProgressNotifyIntervalMs, 5000);
    assert.deepEqual(c.logOutputs, ["stderr"]);
    assert.equal(c.cipherSuites.length, 1);
    assert.equal(c.autoCompactionRetention, 3_600_000);
    assert.deepEqual(
      [c.certFile, c.keyFile, c.clientCertAuth, c.trustedCaFile],
      ["/etc/cairn/server.pem", "/etc/cairn/server-key.pem", true, "/etc/cairn/ca.pem"],
    );
    assert.equal(c.peerAutoTls, true);
    assert.equal(flagValues(c)["config-file"], file);
    // The same from ETCD_CONFIG_FILE.
    assert.equal(parseConfig([], { ETCD_CONFIG_FILE: file }).name, "n1");

    assert.throws(
      () => parseConfig([`--config-file=${dir}/none.yml`], {}),
      (e) =>
        e instanceof ConfigError && e.message === `open ${dir}/none.yml: no such file or directory`,
    );
    Deno.writeTextFileSync(`${dir}/bad.yml`, "name: a: b\n");
    assert.throws(
      () => parseConfig(["--config-file", `${dir}/bad.yml`], {}),
      (e) => e instanceof ConfigError && e.message.startsWith("error converting YAML to JSON"),
    );
    Deno.writeTextFileSync(`${dir}/v2.yml`, "force-new-cluster: true\n");
    assert.throws(
      () => parseConfig(["--config-file", `${dir}/v2.yml`], {}),
      /no --force-new-cluster/,
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});
