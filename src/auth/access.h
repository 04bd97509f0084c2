/* Who may do what. Three pieces:
 *  - scopes as the Docker token spec writes them ("repository:NAME:pull,push",
 *    "registry:catalog:*");
 *  - the access policy: rules "WHO REPOSITORIES ACTIONS", additive, read from
 *    a file at the cloud (docs/security.md);
 *  - grants: what one token says its bearer may do (its "access" claim). */
#ifndef FP_AUTH_ACCESS_H
#define FP_AUTH_ACCESS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "core/error.h"
#include "core/name.h"

enum {
    FP_ACT_PULL = 1,
    FP_ACT_PUSH = 2,
    FP_ACT_DELETE = 4,
    FP_ACT_CATALOG = 8, /* registry:catalog:* */
    FP_ACT_LOGS = 16,   /* service:NAME:logs, in tokens the cloud mints to relay a log read */
};

/* "pull,push" -> bits; "*" -> everything. Returns -1 on an unknown action. */
int fp_actions_parse(const char *list, size_t len, unsigned *out);
/* bits -> JSON array of action names (new reference). */
json_t *fp_actions_json(unsigned actions);

typedef struct fp_scope {
    char type[16];              /* "repository", "registry" or "service" */
    char name[FP_NAME_MAX + 1]; /* repository name, or "catalog" */
    unsigned actions;
} fp_scope;

/* Parse one scope. Repository names must be valid (no "a/../b"); unknown
 * resource types or actions are errors. */
int fp_scope_parse(const char *s, size_t len, fp_scope *out);

/* A principal: who is asking. kind is "user", "node" or "anonymous"; role is
 * "cloud", "fog", "edge" for nodes, "" otherwise. */
typedef struct fp_principal {
    const char *kind;
    const char *name;
    const char *role;
} fp_principal;

typedef struct fp_policy fp_policy;

/* Rules from a file; see docs/security.md for the format. */
int fp_policy_load(const char *path, fp_policy **out, fp_error *err);
/* Parse rules from text (the file's contents). */
int fp_policy_parse(const char *text, const char *origin, fp_policy **out, fp_error *err);
/* The default when no policy is configured: every authenticated principal
 * may pull, push, delete and list; anonymous nothing. */
fp_policy *fp_policy_default(void);
/* Reference counted (a new one starts at 1): the cloud replaces its policy
 * when the file changes while requests still hold the old one. */
fp_policy *fp_policy_ref(fp_policy *p);
void fp_policy_unref(fp_policy *p);

/* Actions the policy grants p on repository repo. */
unsigned fp_policy_actions(const fp_policy *pol, const fp_principal *p, const char *repo);
/* May p list the catalog? (It then sees only what it may pull.) */
bool fp_policy_may_list(const fp_policy *pol, const fp_principal *p);
/* The repository patterns p may pull, {self} substituted, as a JSON array. */
json_t *fp_policy_pull_patterns(const fp_policy *pol, const fp_principal *p);

/* What a verified token grants. Reference counted: the registry's token
 * cache shares one grant between the requests carrying the same token. */
typedef struct fp_grant {
    int refs;
    char subject[128];
    bool node;       /* the subject is a node (may be revoked) */
    char signer[64]; /* x5c tokens: the node whose signer certificate signed it (may be revoked) */
    time_t expires;
    size_t nscopes;
    fp_scope *scopes;
    bool catalog;
    size_t npatterns; /* repositories a catalog listing may show */
    char **patterns;
} fp_grant;

/* Check a token's claims: issuer, audience, expiry and not-before (with
 * skew seconds of tolerance) and build its grant. */
int fp_grant_from_claims(const json_t *claims, const char *issuer, const char *audience, time_t now,
                         unsigned skew, fp_grant **out, char *why, size_t whylen);
fp_grant *fp_grant_ref(fp_grant *g);
void fp_grant_unref(fp_grant *g);
/* Actions granted on a repository; *mentioned says whether the token names
 * it at all (if not, the client should fetch a token for it: 401). */
unsigned fp_grant_actions(const fp_grant *g, const char *repo, bool *mentioned);
/* May the grant's holder read service's log (a scope the cloud mints)? */
bool fp_grant_service_logs(const fp_grant *g, const char *service);
/* Does a repository name match one of the grant's catalog patterns? */
bool fp_grant_lists(const fp_grant *g, const char *repo);

/* Glob match where '*' matches any run of characters, '/' included. */
bool fp_pattern_match(const char *pattern, const char *name);

#endif
