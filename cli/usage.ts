/**
 * etcdctl 3.4's help text for the commands ctl implements, as `etcdctl
 * <command> --help` prints it (and as it prints it on stdout after a flag
 * error). Captured from etcdctl 3.4.23 (user, role and auth included); `snapshot restore` adds etcd 3.5's
 * `--bump-revision` and `--mark-compacted`.
 *
 * @module
 */

/** The GLOBAL OPTIONS block of every command. */
const GLOBALS =
  'GLOBAL OPTIONS:\n      --cacert=""\t\t\t\tverify certificates of TLS-enabled secure servers using this CA bundle\n      --cert=""\t\t\t\t\tidentify secure client using this TLS certificate file\n      --command-timeout=5s\t\t\ttimeout for short running command (excluding dial timeout)\n      --debug[=false]\t\t\t\tenable client-side debug logging\n      --dial-timeout=2s\t\t\t\tdial timeout for client connections\n  -d, --discovery-srv=""\t\t\tdomain name to query for SRV records describing cluster endpoints\n      --discovery-srv-name=""\t\t\tservice name to query when using DNS discovery\n      --endpoints=[127.0.0.1:2379]\t\tgRPC endpoints\n      --hex[=false]\t\t\t\tprint byte strings as hex encoded strings\n      --insecure-discovery[=true]\t\taccept insecure SRV records describing cluster endpoints\n      --insecure-skip-tls-verify[=false]\tskip server certificate verification (CAUTION: this option should be enabled only for testing purposes)\n      --insecure-transport[=true]\t\tdisable transport security for client connections\n      --keepalive-time=2s\t\t\tkeepalive time for client connections\n      --keepalive-timeout=6s\t\t\tkeepalive timeout for client connections\n      --key=""\t\t\t\t\tidentify secure client using this TLS key file\n      --password=""\t\t\t\tpassword for authentication (if this option is used, --user option shouldn\'t include password)\n      --user=""\t\t\t\t\tusername[:password] for authentication (prompt if password is not supplied)\n  -w, --write-out="simple"\t\t\tset the output format (fields, json, protobuf, simple, table)\n\n';

/** The GLOBAL OPTIONS block under `endpoint`, which adds `--cluster`. */
const ENDPOINT_GLOBALS =
  'GLOBAL OPTIONS:\n      --cacert=""\t\t\t\tverify certificates of TLS-enabled secure servers using this CA bundle\n      --cert=""\t\t\t\t\tidentify secure client using this TLS certificate file\n      --cluster[=false]\t\t\t\tuse all endpoints from the cluster member list\n      --command-timeout=5s\t\t\ttimeout for short running command (excluding dial timeout)\n      --debug[=false]\t\t\t\tenable client-side debug logging\n      --dial-timeout=2s\t\t\t\tdial timeout for client connections\n  -d, --discovery-srv=""\t\t\tdomain name to query for SRV records describing cluster endpoints\n      --discovery-srv-name=""\t\t\tservice name to query when using DNS discovery\n      --endpoints=[127.0.0.1:2379]\t\tgRPC endpoints\n      --hex[=false]\t\t\t\tprint byte strings as hex encoded strings\n      --insecure-discovery[=true]\t\taccept insecure SRV records describing cluster endpoints\n      --insecure-skip-tls-verify[=false]\tskip server certificate verification (CAUTION: this option should be enabled only for testing purposes)\n      --insecure-transport[=true]\t\tdisable transport security for client connections\n      --keepalive-time=2s\t\t\tkeepalive time for client connections\n      --keepalive-timeout=6s\t\t\tkeepalive timeout for client connections\n      --key=""\t\t\t\t\tidentify secure client using this TLS key file\n      --password=""\t\t\t\tpassword for authentication (if this option is used, --user option shouldn\'t include password)\n      --user=""\t\t\t\t\tusername[:password] for authentication (prompt if password is not supplied)\n  -w, --write-out="simple"\t\t\tset the output format (fields, json, protobuf, simple, table)\n\n';

/** Help text by command path (`get`, `endpoint status`). */
export const HELP: Record<string, string> = {
  "get":
    'NAME:\n\tget - Gets the key or a range of keys\n\nUSAGE:\n\tetcdctl get [options] <key> [range_end] [flags]\n\nOPTIONS:\n      --consistency="l"\t\t\tLinearizable(l) or Serializable(s)\n      --from-key[=false]\t\tGet keys that are greater than or equal to the given key using byte compare\n  -h, --help[=false]\t\t\thelp for get\n      --keys-only[=false]\t\tGet only the keys\n      --limit=0\t\t\t\tMaximum number of results\n      --order=""\t\t\tOrder of results; ASCEND or DESCEND (ASCEND by default)\n      --prefix[=false]\t\t\tGet keys with matching prefix\n      --print-value-only[=false]\tOnly write values when using the "simple" output format\n      --rev=0\t\t\t\tSpecify the kv revision\n      --sort-by=""\t\t\tSort target; CREATE, KEY, MODIFY, VALUE, or VERSION\n\n' +
    GLOBALS,
  "put":
    "NAME:\n\tput - Puts the given key into the store\n\nUSAGE:\n\tetcdctl put [options] <key> <value> (<value> can also be given from stdin) [flags]\n\nDESCRIPTION:\n\tPuts the given key into the store.\n\t\n\tWhen <value> begins with '-', <value> is interpreted as a flag.\n\tInsert '--' for workaround:\n\t\n\t$ put <key> -- <value>\n\t$ put -- <key> <value>\n\t\n\tIf <value> isn't given as a command line argument and '--ignore-value' is not specified,\n\tthis command tries to read the value from standard input.\n\t\n\tIf <lease> isn't given as a command line argument and '--ignore-lease' is not specified,\n\tthis command tries to read the value from standard input.\n\t\n\tFor example,\n\t$ cat file | put <key>\n\twill store the content of the file to <key>.\n\nOPTIONS:\n  -h, --help[=false]\t\thelp for put\n      --ignore-lease[=false]\tupdates the key using its current lease\n      --ignore-value[=false]\tupdates the key using its current value\n      --lease=\"0\"\t\tlease ID (in hexadecimal) to attach to the key\n      --prev-kv[=false]\t\treturn the previous key-value pair before modification\n\n" +
    GLOBALS,
  "del":
    "NAME:\n\tdel - Removes the specified key or range of keys [key, range_end)\n\nUSAGE:\n\tetcdctl del [options] <key> [range_end] [flags]\n\nOPTIONS:\n      --from-key[=false]\tdelete keys that are greater than or equal to the given key using byte compare\n  -h, --help[=false]\t\thelp for del\n      --prefix[=false]\t\tdelete keys with matching prefix\n      --prev-kv[=false]\t\treturn deleted key-value pairs\n\n" +
    GLOBALS,
  "txn":
    "NAME:\n\ttxn - Txn processes all the requests in one transaction\n\nUSAGE:\n\tetcdctl txn [options] [flags]\n\nOPTIONS:\n  -h, --help[=false]\t\thelp for txn\n  -i, --interactive[=false]\tInput transaction in interactive mode\n\n" +
    GLOBALS,
  "compaction":
    "NAME:\n\tcompaction - Compacts the event history in etcd\n\nUSAGE:\n\tetcdctl compaction [options] <revision> [flags]\n\nOPTIONS:\n  -h, --help[=false]\t\thelp for compaction\n      --physical[=false]\t'true' to wait for compaction to physically remove all old revisions\n\n" +
    GLOBALS,
  "watch":
    "NAME:\n\twatch - Watches events stream on keys or prefixes\n\nUSAGE:\n\tetcdctl watch [options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...] [flags]\n\nOPTIONS:\n  -h, --help[=false]\t\thelp for watch\n  -i, --interactive[=false]\tInteractive mode\n      --prefix[=false]\t\tWatch on a prefix if prefix is set\n      --prev-kv[=false]\t\tget the previous key-value pair before the event happens\n      --rev=0\t\t\tRevision to start watching\n\n" +
    GLOBALS,
  "lock":
    "NAME:\n\tlock - Acquires a named lock\n\nUSAGE:\n\tetcdctl lock <lockname> [exec-command arg1 arg2 ...] [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for lock\n      --ttl=10\t\ttimeout for session\n\n" +
    GLOBALS,
  "elect":
    "NAME:\n\telect - Observes and participates in leader election\n\nUSAGE:\n\tetcdctl elect <election-name> [proposal] [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for elect\n  -l, --listen[=false]\tobservation mode\n\n" +
    GLOBALS,
  "version":
    "NAME:\n\tversion - Prints the version of etcdctl\n\nUSAGE:\n\tetcdctl version [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for version\n\n" +
    GLOBALS,
  "endpoint":
    "NAME:\n\tendpoint - Endpoint related commands\n\nUSAGE:\n\tetcdctl endpoint <subcommand> [flags]\n\nAPI VERSION:\n\t3.4\n\n\nCOMMANDS:\n\thashkv\tPrints the KV history hash for each endpoint in --endpoints\n\thealth\tChecks the healthiness of endpoints specified in `--endpoints` flag\n\tstatus\tPrints out the status of endpoints specified in `--endpoints` flag\n\nOPTIONS:\n      --cluster[=false]\tuse all endpoints from the cluster member list\n  -h, --help[=false]\thelp for endpoint\n\n" +
    GLOBALS,
  "endpoint health":
    "NAME:\n\tendpoint health - Checks the healthiness of endpoints specified in `--endpoints` flag\n\nUSAGE:\n\tetcdctl endpoint health [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for health\n\n" +
    ENDPOINT_GLOBALS,
  "endpoint status":
    "NAME:\n\tendpoint status - Prints out the status of endpoints specified in `--endpoints` flag\n\nUSAGE:\n\tetcdctl endpoint status [flags]\n\nDESCRIPTION:\n\tWhen --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.\n\tThe items in the lists are endpoint, ID, version, db size, is leader, is learner, raft term, raft index, raft applied index, errors.\n\nOPTIONS:\n  -h, --help[=false]\thelp for status\n\n" +
    ENDPOINT_GLOBALS,
  "lease":
    "NAME:\n\tlease - Lease related commands\n\nUSAGE:\n\tetcdctl lease <subcommand> [flags]\n\nAPI VERSION:\n\t3.4\n\n\nCOMMANDS:\n\tgrant\t\tCreates leases\n\tkeep-alive\tKeeps leases alive (renew)\n\tlist\t\tList all active leases\n\trevoke\t\tRevokes leases\n\ttimetolive\tGet lease information\n\nOPTIONS:\n  -h, --help[=false]\thelp for lease\n\n" +
    GLOBALS,
  "lease grant":
    "NAME:\n\tlease grant - Creates leases\n\nUSAGE:\n\tetcdctl lease grant <ttl> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for grant\n\n" +
    GLOBALS,
  "lease keep-alive":
    "NAME:\n\tlease keep-alive - Keeps leases alive (renew)\n\nUSAGE:\n\tetcdctl lease keep-alive [options] <leaseID> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for keep-alive\n      --once[=false]\tResets the keep-alive time to its original value and exits immediately\n\n" +
    GLOBALS,
  "lease list":
    "NAME:\n\tlease list - List all active leases\n\nUSAGE:\n\tetcdctl lease list [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for list\n\n" +
    GLOBALS,
  "lease revoke":
    "NAME:\n\tlease revoke - Revokes leases\n\nUSAGE:\n\tetcdctl lease revoke <leaseID> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for revoke\n\n" +
    GLOBALS,
  "lease timetolive":
    "NAME:\n\tlease timetolive - Get lease information\n\nUSAGE:\n\tetcdctl lease timetolive <leaseID> [options] [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for timetolive\n      --keys[=false]\tGet keys attached to this lease\n\n" +
    GLOBALS,
  "member":
    "NAME:\n\tmember - Membership related commands\n\nUSAGE:\n\tetcdctl member <subcommand> [flags]\n\nAPI VERSION:\n\t3.4\n\n\nCOMMANDS:\n\tadd\tAdds a member into the cluster\n\tlist\tLists all members in the cluster\n\tpromote\tPromotes a non-voting member in the cluster\n\tremove\tRemoves a member from the cluster\n\tupdate\tUpdates a member in the cluster\n\nOPTIONS:\n  -h, --help[=false]\thelp for member\n\n" +
    GLOBALS,
  "member add":
    'NAME:\n\tmember add - Adds a member into the cluster\n\nUSAGE:\n\tetcdctl member add <memberName> [options] [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for add\n      --learner[=false]\tindicates if the new member is raft learner\n      --peer-urls=""\tcomma separated peer URLs for the new member.\n\n' +
    GLOBALS,
  "member remove":
    "NAME:\n\tmember remove - Removes a member from the cluster\n\nUSAGE:\n\tetcdctl member remove <memberID> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for remove\n\n" +
    GLOBALS,
  "member update":
    'NAME:\n\tmember update - Updates a member in the cluster\n\nUSAGE:\n\tetcdctl member update <memberID> [options] [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for update\n      --peer-urls=""\tcomma separated peer URLs for the updated member.\n\n' +
    GLOBALS,
  "member list":
    "NAME:\n\tmember list - Lists all members in the cluster\n\nUSAGE:\n\tetcdctl member list [flags]\n\nDESCRIPTION:\n\tWhen --write-out is set to simple, this command prints out comma-separated member lists for each endpoint.\n\tThe items in the lists are ID, Status, Name, Peer Addrs, Client Addrs, Is Learner.\n\nOPTIONS:\n  -h, --help[=false]\thelp for list\n\n" +
    GLOBALS,
  "member promote":
    "NAME:\n\tmember promote - Promotes a non-voting member in the cluster\n\nUSAGE:\n\tetcdctl member promote <memberID> [flags]\n\nDESCRIPTION:\n\tPromotes a non-voting learner member to a voting one in the cluster.\n\nOPTIONS:\n  -h, --help[=false]\thelp for promote\n\n" +
    GLOBALS,
  "move-leader":
    "NAME:\n\tmove-leader - Transfers leadership to another etcd cluster member.\n\nUSAGE:\n\tetcdctl move-leader <transferee-member-id> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for move-leader\n\n" +
    GLOBALS,
  "snapshot":
    "NAME:\n\tsnapshot - Manages etcd node snapshots\n\nUSAGE:\n\tetcdctl snapshot <subcommand> [flags]\n\nAPI VERSION:\n\t3.4\n\n\nCOMMANDS:\n\trestore\tRestores an etcd member snapshot to an etcd directory\n\tsave\tStores an etcd node backend snapshot to a given file\n\tstatus\tGets backend snapshot status of a given file\n\nOPTIONS:\n  -h, --help[=false]\thelp for snapshot\n\n" +
    GLOBALS,
  "snapshot restore":
    'NAME:\n\tsnapshot restore - Restores an etcd member snapshot to an etcd directory\n\nUSAGE:\n\tetcdctl snapshot restore <filename> [options] [flags]\n\nOPTIONS:\n      --bump-revision=0\t\t\t\t\t\tHow much to increase the latest revision after restore\n      --data-dir=""\t\t\t\t\t\tPath to the data directory\n  -h, --help[=false]\t\t\t\t\t\thelp for restore\n      --initial-advertise-peer-urls="http://localhost:2380"\tList of this member\'s peer URLs to advertise to the rest of the cluster\n      --initial-cluster="default=http://localhost:2380"\t\tInitial cluster configuration for restore bootstrap\n      --initial-cluster-token="etcd-cluster"\t\t\tInitial cluster token for the etcd cluster during restore bootstrap\n      --mark-compacted[=false]\t\t\t\t\tMark the latest revision after restore as the point of scheduled compaction (required if --bump-revision > 0, disallowed otherwise)\n      --name="default"\t\t\t\t\t\tHuman-readable name for this member\n      --skip-hash-check[=false]\t\t\t\t\tIgnore snapshot integrity hash value (required if copied from data directory)\n      --wal-dir=""\t\t\t\t\t\tPath to the WAL directory (use --data-dir if none given)\n\n' +
    GLOBALS,
  "snapshot save":
    "NAME:\n\tsnapshot save - Stores an etcd node backend snapshot to a given file\n\nUSAGE:\n\tetcdctl snapshot save <filename> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for save\n\n" +
    GLOBALS,
  "snapshot status":
    "NAME:\n\tsnapshot status - Gets backend snapshot status of a given file\n\nUSAGE:\n\tetcdctl snapshot status <filename> [flags]\n\nDESCRIPTION:\n\tWhen --write-out is set to simple, this command prints out comma-separated status lists for each endpoint.\n\tThe items in the lists are hash, revision, total keys, total size.\n\nOPTIONS:\n  -h, --help[=false]\thelp for status\n\n" +
    GLOBALS,
  "alarm":
    "NAME:\n\talarm - Alarm related commands\n\nUSAGE:\n\tetcdctl alarm <subcommand> [flags]\n\nAPI VERSION:\n\t3.4\n\n\nCOMMANDS:\n\tdisarm\tDisarms all alarms\n\tlist\tLists all alarms\n\nOPTIONS:\n  -h, --help[=false]\thelp for alarm\n\n" +
    GLOBALS,
  "alarm disarm":
    "NAME:\n\talarm disarm - Disarms all alarms\n\nUSAGE:\n\tetcdctl alarm disarm [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for disarm\n\n" +
    GLOBALS,
  "alarm list":
    "NAME:\n\talarm list - Lists all alarms\n\nUSAGE:\n\tetcdctl alarm list [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for list\n\n" +
    GLOBALS,
  "defrag":
    'NAME:\n\tdefrag - Defragments the storage of the etcd members with given endpoints\n\nUSAGE:\n\tetcdctl defrag [flags]\n\nOPTIONS:\n      --cluster[=false]\tuse all endpoints from the cluster member list\n      --data-dir=""\tOptional. If present, defragments a data directory not in use by etcd.\n  -h, --help[=false]\thelp for defrag\n\n' +
    GLOBALS,
  "endpoint hashkv":
    "NAME:\n\tendpoint hashkv - Prints the KV history hash for each endpoint in --endpoints\n\nUSAGE:\n\tetcdctl endpoint hashkv [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for hashkv\n      --rev=0\t\tmaximum revision to hash (default: all revisions)\n\n" +
    ENDPOINT_GLOBALS,
  "user":
    "NAME:\n\tuser - User related commands\n\nUSAGE:\n\tetcdctl user <subcommand> [flags]\n\nAPI VERSION:\n\t3.4\n\n\nCOMMANDS:\n\tadd\t\tAdds a new user\n\tdelete\t\tDeletes a user\n\tget\t\tGets detailed information of a user\n\tgrant-role\tGrants a role to a user\n\tlist\t\tLists all users\n\tpasswd\t\tChanges password of user\n\trevoke-role\tRevokes a role from a user\n\nOPTIONS:\n  -h, --help[=false]\thelp for user\n\n" +
    GLOBALS,
  "user add":
    'NAME:\n\tuser add - Adds a new user\n\nUSAGE:\n\tetcdctl user add <user name or user:password> [options] [flags]\n\nOPTIONS:\n  -h, --help[=false]\t\thelp for add\n      --interactive[=true]\tRead password from stdin instead of interactive terminal\n      --new-user-password=""\tSupply password from the command line flag\n      --no-password[=false]\tCreate a user without password (CN based auth only)\n\n' +
    GLOBALS,
  "user delete":
    "NAME:\n\tuser delete - Deletes a user\n\nUSAGE:\n\tetcdctl user delete <user name> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for delete\n\n" +
    GLOBALS,
  "user get":
    "NAME:\n\tuser get - Gets detailed information of a user\n\nUSAGE:\n\tetcdctl user get <user name> [options] [flags]\n\nOPTIONS:\n      --detail[=false]\tShow permissions of roles granted to the user\n  -h, --help[=false]\thelp for get\n\n" +
    GLOBALS,
  "user grant-role":
    "NAME:\n\tuser grant-role - Grants a role to a user\n\nUSAGE:\n\tetcdctl user grant-role <user name> <role name> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for grant-role\n\n" +
    GLOBALS,
  "user list":
    "NAME:\n\tuser list - Lists all users\n\nUSAGE:\n\tetcdctl user list [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for list\n\n" +
    GLOBALS,
  "user passwd":
    "NAME:\n\tuser passwd - Changes password of user\n\nUSAGE:\n\tetcdctl user passwd <user name> [options] [flags]\n\nOPTIONS:\n  -h, --help[=false]\t\thelp for passwd\n      --interactive[=true]\tIf true, read password from stdin instead of interactive terminal\n\n" +
    GLOBALS,
  "user revoke-role":
    "NAME:\n\tuser revoke-role - Revokes a role from a user\n\nUSAGE:\n\tetcdctl user revoke-role <user name> <role name> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for revoke-role\n\n" +
    GLOBALS,
  "role":
    "NAME:\n\trole - Role related commands\n\nUSAGE:\n\tetcdctl role <subcommand> [flags]\n\nAPI VERSION:\n\t3.4\n\n\nCOMMANDS:\n\tadd\t\t\tAdds a new role\n\tdelete\t\t\tDeletes a role\n\tget\t\t\tGets detailed information of a role\n\tgrant-permission\tGrants a key to a role\n\tlist\t\t\tLists all roles\n\trevoke-permission\tRevokes a key from a role\n\nOPTIONS:\n  -h, --help[=false]\thelp for role\n\n" +
    GLOBALS,
  "role add":
    "NAME:\n\trole add - Adds a new role\n\nUSAGE:\n\tetcdctl role add <role name> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for add\n\n" +
    GLOBALS,
  "role delete":
    "NAME:\n\trole delete - Deletes a role\n\nUSAGE:\n\tetcdctl role delete <role name> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for delete\n\n" +
    GLOBALS,
  "role get":
    "NAME:\n\trole get - Gets detailed information of a role\n\nUSAGE:\n\tetcdctl role get <role name> [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for get\n\n" +
    GLOBALS,
  "role grant-permission":
    "NAME:\n\trole grant-permission - Grants a key to a role\n\nUSAGE:\n\tetcdctl role grant-permission [options] <role name> <permission type> <key> [endkey] [flags]\n\nOPTIONS:\n      --from-key[=false]\tgrant a permission of keys that are greater than or equal to the given key using byte compare\n  -h, --help[=false]\t\thelp for grant-permission\n      --prefix[=false]\t\tgrant a prefix permission\n\n" +
    GLOBALS,
  "role list":
    "NAME:\n\trole list - Lists all roles\n\nUSAGE:\n\tetcdctl role list [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for list\n\n" +
    GLOBALS,
  "role revoke-permission":
    "NAME:\n\trole revoke-permission - Revokes a key from a role\n\nUSAGE:\n\tetcdctl role revoke-permission <role name> <key> [endkey] [flags]\n\nOPTIONS:\n      --from-key[=false]\trevoke a permission of keys that are greater than or equal to the given key using byte compare\n  -h, --help[=false]\t\thelp for revoke-permission\n      --prefix[=false]\t\trevoke a prefix permission\n\n" +
    GLOBALS,
  "auth":
    "NAME:\n\tauth - Enable or disable authentication\n\nUSAGE:\n\tetcdctl auth <enable or disable> [flags]\n\nAPI VERSION:\n\t3.4\n\n\nCOMMANDS:\n\tdisable\tDisables authentication\n\tenable\tEnables authentication\n\nOPTIONS:\n  -h, --help[=false]\thelp for auth\n\n" +
    GLOBALS,
  "auth disable":
    "NAME:\n\tauth disable - Disables authentication\n\nUSAGE:\n\tetcdctl auth disable [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for disable\n\n" +
    GLOBALS,
  "auth enable":
    "NAME:\n\tauth enable - Enables authentication\n\nUSAGE:\n\tetcdctl auth enable [flags]\n\nOPTIONS:\n  -h, --help[=false]\thelp for enable\n\n" +
    GLOBALS,
};
