/* The cloud's audit trail: DATA/audit.log, one JSON object a line, in the
 * order things happened. Each entry carries the hash of the one before it
 * and an ES256 signature by the cloud's token key, so a copy of the file
 * and the cloud's public key are enough to tell whether any entry was
 * edited, removed, inserted or moved (fp_audit_verify, `fogport audit
 * verify`). A line, keys sorted, no spaces, ASCII only:
 *   {"actor":"admin","details":{...},"hash":"sha256:...","kid":"...",
 *    "kind":"service_created","prev":"sha256:...","seq":7,"sig":"...",
 *    "subject":"web","time":1700000000}
 * hash = sha256 of the line without "hash" and "sig" (same encoding), prev
 * = the previous entry's hash (FP_AUDIT_GENESIS for seq 1), sig = ES256
 * over "fogport-audit-v1:" + hash, kid = the signing key's thumbprint.
 *
 * A chain alone cannot show that its last entries were cut off, so every
 * append also rewrites DATA/audit.head, {"seq","hash","sig",...}: the last
 * entry, signed over "fogport-audit-head-v1:SEQ:HASH". Verification fails
 * when the log ends before its head. */
#ifndef FP_CONTROL_AUDIT_H
#define FP_CONTROL_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/jwt.h"
#include "core/digest.h"
#include "core/error.h"

#define FP_AUDIT_GENESIS "sha256:0000000000000000000000000000000000000000000000000000000000000000"
/* Longest line; an entry whose details would make it longer is refused. */
#define FP_AUDIT_LINE_MAX (64 * 1024)

/* What is audited (docs/security.md, "Audit trail"). Kinds are open: later
 * work appends its own the same way. */
#define FP_AUDIT_POLICY_LOADED      "policy_loaded"      /* policy or users file changed */
#define FP_AUDIT_NODE_TOKEN_CREATED "node_token_created" /* a one-time join token */
#define FP_AUDIT_NODE_JOINED        "node_joined"        /* a node got its identity */
#define FP_AUDIT_NODE_REVOKED       "node_revoked"
#define FP_AUDIT_SIGNER_ISSUED      "signer_issued" /* a fog may sign tokens (x5c) */
#define FP_AUDIT_IMAGE_REGISTERED   "image_registered"
#define FP_AUDIT_IMAGE_DELETED      "image_deleted"
#define FP_AUDIT_SERVICE_CREATED    "service_created"
#define FP_AUDIT_SERVICE_UPDATED    "service_updated"
#define FP_AUDIT_SERVICE_DELETED    "service_deleted"
#define FP_AUDIT_VIOLATION          "violation"
#define FP_AUDIT_RECALL             "recall"
#define FP_AUDIT_UNRECALL           "unrecall"
#define FP_AUDIT_HANDOVER           "handover"
/* Written by the log itself: a torn last line (a crash during an append)
 * was cut off; and the log was found shorter than its signed head. */
#define FP_AUDIT_REPAIRED "audit_repaired"
#define FP_AUDIT_TAMPERED "audit_tampered"

typedef struct fp_audit fp_audit;

/* Open (create) DATA/audit.log for appending, signing with key (borrowed:
 * it must outlive the log). A torn last line is cut off here, and the cut
 * recorded; a last line that is complete but unreadable is an error (the
 * next entry would have nothing to chain to). */
int fp_audit_open(fp_audit **out, const char *data_dir, const fp_key *key, fp_error *err);
/* Name the private key's file in the head, so that commands run later on
 * the cloud's data directory (`fogport node revoke --data`) can sign their
 * entries too. A hint for appending only: verification never uses it. */
void fp_audit_set_key_path(fp_audit *a, const char *path);
void fp_audit_close(fp_audit *a);
const char *fp_audit_path(const fp_audit *a);

/* Append one entry; details is an object or NULL ({}). Serialized within
 * the process (mutex) and between processes (flock), durable when it
 * returns (fsync). Safe with a NULL log (does nothing). */
int fp_audit_append(fp_audit *a, const char *kind, const char *actor, const char *subject,
                    const json_t *details, fp_error *err);

/* The head file that goes with a log: audit.log -> audit.head (any other
 * name: NAME.head). */
void fp_audit_head_path(const char *log_path, char *out, size_t outlen);
/* The head as written (unverified); 1 when there is none. */
int fp_audit_head_read(const char *head_path, json_t **head, fp_error *err);

/* Up to limit entries with seq > after, as written (unverified), in file
 * order; *more when some were left. A torn last line is skipped. */
int fp_audit_read(const char *path, uint64_t after, size_t limit, json_t **entries, bool *more,
                  fp_error *err);
/* The last entry of kind (1: none), for "record only when it changed". */
int fp_audit_find_last(const char *path, const char *kind, json_t **entry, fp_error *err);

typedef struct fp_audit_report {
    uint64_t entries;  /* complete entries that verified (before any bad one) */
    uint64_t bad_line; /* the first bad entry's line (1-based); 0: none, or the head */
    int64_t bad_seq;   /* its seq as written; -1 unreadable */
    char why[400];     /* what is wrong, when verification fails */
    size_t torn_bytes; /* an incomplete last line (an append cut by a crash) */
    bool head_found;
    uint64_t head_seq;
    char last_hash[FP_DIGEST_MAX];
} fp_audit_report;

/* Called with each entry that verified. Non-zero stops (fails). */
typedef int (*fp_audit_entry_fn)(void *ctx, const json_t *entry);

/* Verify the log at path with the cloud's public keys (an entry names its
 * key by kid): canonical encoding, hash, signature, seq 1, 2, ... and prev
 * chaining; then, with head_path, the signed head, which must name an
 * entry the log holds (a missing head fails too). 0 valid, 1 not (rep
 * says where and why), -1 the file cannot be read. */
int fp_audit_verify(const char *path, const char *head_path, const fp_keyring *keys,
                    fp_audit_entry_fn fn, void *ctx, fp_audit_report *rep, fp_error *err);

#endif
