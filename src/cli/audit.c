/* fogport audit [--json]: the cloud's audit trail through its API;
 * fogport audit verify: check a copy of it offline (control/audit.h).
 * Also fp_cli_audit, with which commands run on the cloud's data directory
 * (node token create, node revoke) record what they did. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "cli/cli.h"
#include "cli/context.h"
#include "control/audit.h"
#include "core/config.h"

const char fp_help_audit[] =
    "usage: fogport audit [--json]\n"
    "       fogport audit verify [--config FILE | --data DIR | --file LOG] [--key PUB.pem]\n"
    "                            [--head FILE | --no-head]\n\n"
    "The cloud appends every grant of a node identity (join tokens, joins, revocations,\n"
    "signer certificates), change of its policy or users, registration (a tag pushed to\n"
    "the cloud), deployment (service created, updated, deleted), violation, recall and\n"
    "hand-over to DATA/audit.log: a chain of entries, each with the hash of the one\n"
    "before and signed with the cloud's token key. DATA/audit.head is the last entry,\n"
    "signed too. Token grants for pulls are not recorded.\n\n"
    "'fogport audit' lists the entries through the cloud's API (the client context:\n"
    "fogport login, or FOGPORT_CONFIG=DIR/client.json for a sandbox).\n\n"
    "'fogport audit verify' checks the log offline: the encoding, hash and signature of\n"
    "every entry, the sequence and the chaining, and the signed head (a log missing its\n"
    "last entries fails). The key comes from --key (PEM: the cloud's token.pub), or the\n"
    "cloud's configuration ([auth] token_keys, its CA directory's token.pub). Exits 1\n"
    "naming the first bad entry and why: edited (hash mismatch), removed or reordered\n"
    "(seq or prev mismatch), forged (bad signature), cut off (ends before the head).\n\n"
    "examples:\n"
    "  fogport audit --json\n"
    "  fogport audit verify --config /etc/fogport/cloud.conf\n"
    "  fogport audit verify --file copy/audit.log --key ca/token.pub\n";

/* ---- recording from commands run on the cloud ------------------------- */

/* The private key the cloud signs with: its configuration, else the path
 * the running cloud wrote into the head (a hint for signing only). */
static bool key_path(const fp_config *cfg, const char *log, char *out, size_t outlen)
{
    if (cfg->token_key[0]) {
        snprintf(out, outlen, "%s", cfg->token_key);
        return true;
    }
    if (cfg->node_ca[0]) {
        snprintf(out, outlen, "%s/token.key", cfg->node_ca);
        if (access(out, R_OK) == 0) return true;
    }
    char head[FP_PATH_MAX + 16];
    fp_audit_head_path(log, head, sizeof head);
    json_t *h = NULL;
    fp_error err;
    const char *hint = NULL;
    if (fp_audit_head_read(head, &h, &err) == 0)
        hint = json_string_value(json_object_get(h, "key"));
    if (hint) snprintf(out, outlen, "%s", hint);
    json_decref(h);
    return hint != NULL;
}

void fp_cli_audit(const fp_config *cfg, const char *kind, const char *subject, json_t *details)
{
    char log[FP_PATH_MAX + 16], kp[FP_PATH_MAX + 16];
    snprintf(log, sizeof log, "%s/audit.log", cfg->data_dir);
    bool kept = access(log, F_OK) == 0;
    if (!key_path(cfg, log, kp, sizeof kp)) {
        /* a cloud that keeps a log must hear of it; elsewhere there is none */
        if (kept)
            fprintf(stderr,
                    "fogport: warning: %s %s is not in the audit log: no signing key known "
                    "here (give --config)\n",
                    kind, subject);
        json_decref(details);
        return;
    }
    struct passwd *pw = getpwuid(geteuid());
    char actor[96];
    snprintf(actor, sizeof actor, "local:%s", pw ? pw->pw_name : "?");
    fp_key *key = NULL;
    fp_audit *a = NULL;
    fp_error err;
    if (fp_key_load(kp, &key, &err) < 0 || fp_audit_open(&a, cfg->data_dir, key, &err) < 0 ||
        (fp_audit_set_key_path(a, kp), fp_audit_append(a, kind, actor, subject, details, &err)) < 0)
        fprintf(stderr, "fogport: warning: %s %s is not in the audit log: %s\n", kind, subject,
                err.msg);
    fp_audit_close(a);
    fp_key_free(key);
    json_decref(details);
}

/* ---- listing ------------------------------------------------------------ */

static int list(bool as_json)
{
    json_t *all = json_array();
    uint64_t after = 0;
    fp_error err;
    for (;;) {
        char path[96];
        snprintf(path, sizeof path, "/api/v1/audit?after=%" PRIu64, after);
        json_t *doc;
        if (fp_context_get_json(path, &doc, &err) < 0) {
            json_decref(all);
            return fp_cli_fail(&err);
        }
        json_t *page = json_object_get(doc, "entries");
        size_t n = json_array_size(page);
        json_array_extend(all, page);
        if (n)
            after =
                (uint64_t)json_integer_value(json_object_get(json_array_get(page, n - 1), "seq"));
        bool more = json_is_true(json_object_get(doc, "more")) && n > 0;
        json_decref(doc);
        if (!more) break;
    }
    if (as_json) {
        fp_cli_print_json(all);
        json_decref(all);
        return 0;
    }
    printf("%-5s %-20s %-19s %-16s %-24s %s\n", "SEQ", "TIME", "KIND", "ACTOR", "SUBJECT",
           "DETAILS");
    size_t i;
    json_t *e;
    json_array_foreach(all, i, e)
    {
        time_t t = (time_t)json_integer_value(json_object_get(e, "time"));
        struct tm tm;
        gmtime_r(&t, &tm);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        char *details = json_dumps(json_object_get(e, "details"), JSON_COMPACT | JSON_SORT_KEYS);
        printf("%-5" JSON_INTEGER_FORMAT " %-20s %-19s %-16s %-24s %s\n",
               json_integer_value(json_object_get(e, "seq")), when,
               json_string_value(json_object_get(e, "kind")) ?: "?",
               json_string_value(json_object_get(e, "actor")) ?: "?",
               json_string_value(json_object_get(e, "subject")) ?: "?", details ? details : "");
        free(details);
    }
    json_decref(all);
    return 0;
}

/* ---- verification ------------------------------------------------------- */

/* The cloud's public keys: --key, else its configuration. */
static int load_keys(const fp_config *cfg, const char *given, fp_keyring **out, fp_error *err)
{
    char path[FP_PATH_MAX + 16] = "";
    bool private_ok = false;
    if (given)
        snprintf(path, sizeof path, "%s", given);
    else if (cfg->token_keys[0])
        snprintf(path, sizeof path, "%s", cfg->token_keys);
    else if (cfg->node_ca[0])
        snprintf(path, sizeof path, "%s/token.pub", cfg->node_ca);
    else if (cfg->token_key[0]) {
        snprintf(path, sizeof path, "%s", cfg->token_key);
        private_ok = true;
    }
    if (!path[0])
        return fp_error_set(err, 0,
                            "no key to verify with: give --key (the cloud's token.pub) or "
                            "--config (the cloud's configuration)");
    fp_keyring *ring = fp_keyring_new();
    if (!ring) return fp_error_set(err, ENOMEM, "keys");
    fp_error kerr;
    if (!private_ok && fp_keyring_load(ring, path, &kerr) == 0 && fp_keyring_size(ring) > 0) {
        *out = ring;
        return 0;
    }
    /* a single key in any PEM form the loader takes (a private key too) */
    fp_key *k = NULL;
    if (fp_key_load(path, &k, err) < 0 || fp_keyring_add(ring, k) < 0) {
        fp_keyring_free(ring);
        return -1;
    }
    *out = ring;
    return 0;
}

static int verify(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"data", required_argument, NULL, 'd'},
        {"file", required_argument, NULL, 'f'},   {"key", required_argument, NULL, 'k'},
        {"head", required_argument, NULL, 'H'},   {"no-head", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *data = NULL, *file = NULL, *key = NULL, *head = NULL;
    bool no_head = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:d:f:k:H:nh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'f':
            file = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'H':
            head = optarg;
            break;
        case 'n':
            no_head = true;
            break;
        case 'h':
            fp_cli_help("audit");
            return 0;
        default:
            return fp_cli_usage_error("audit", "unknown option");
        }
    }
    if (optind < argc) return fp_cli_usage_error("audit", "unexpected argument");
    if (head && no_head) return fp_cli_usage_error("audit", "--head or --no-head, not both");
    fp_config cfg;
    if (fp_cli_load_config(&cfg, config, data) < 0) return 1;
    char log[FP_PATH_MAX + 16], hp[FP_PATH_MAX + 16];
    snprintf(log, sizeof log, "%s", file ? file : "");
    if (!file) snprintf(log, sizeof log, "%s/audit.log", cfg.data_dir);
    if (head)
        snprintf(hp, sizeof hp, "%s", head);
    else
        fp_audit_head_path(log, hp, sizeof hp);
    fp_keyring *keys = NULL;
    fp_error err;
    if (load_keys(&cfg, key, &keys, &err) < 0) return fp_cli_fail(&err);
    fp_audit_report rep;
    int rc = fp_audit_verify(log, no_head ? NULL : hp, keys, NULL, NULL, &rep, &err);
    fp_keyring_free(keys);
    if (rc < 0) return fp_cli_fail(&err);
    if (rep.torn_bytes)
        fprintf(stderr,
                "fogport: warning: %s ends in %zu bytes of an interrupted append after entry "
                "%" PRIu64 " (the cloud cuts them at its next append)\n",
                log, rep.torn_bytes, rep.entries);
    if (rc == 1) {
        if (rep.bad_line)
            fprintf(stderr, "fogport: %s: entry %" PRId64 " (line %" PRIu64 "): %s\n", log,
                    rep.bad_seq, rep.bad_line, rep.why);
        else
            fprintf(stderr, "fogport: %s: %s\n", log, rep.why);
        fprintf(stderr,
                "fogport: the audit log does NOT verify (%" PRIu64
                " entries before the first bad one)\n",
                rep.entries);
        return 1;
    }
    printf("%s: %" PRIu64 " entries verify", log, rep.entries);
    if (rep.head_found)
        printf("; signed head at entry %" PRIu64 "\n", rep.head_seq);
    else if (no_head)
        printf(" (chain only: entries cut off the end would go unnoticed)\n");
    else
        printf("\n");
    if (rep.entries) printf("last hash %s\n", rep.last_hash);
    return 0;
}

int fp_cmd_audit(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "verify")) return verify(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        fp_cli_help("audit");
        return 0;
    }
    if (argc > 2 || (argc == 2 && strcmp(argv[1], "--json") != 0))
        return fp_cli_usage_error("audit", "expected --json or verify");
    return list(argc == 2);
}
