/* Tokens signed by a fog's token-signing certificate (x5c in the header).
 * Trusted when, in this order: the algorithm is ES256; this registry has a
 * deployment CA; the chain verifies to it and its leaf is a signer
 * certificate valid now (auth/x5c.c); the signer (the leaf's CN) is one this
 * registry trusts - a fog itself, or a node in [auth] token_signers - and is
 * not revoked; the signature verifies with the leaf's key; iss names the
 * signer (a fog cannot pass for the cloud's issuer); aud names this
 * registry; exp and nbf hold. The cloud trusts no signer unless configured:
 * a fog never mints tokens the cloud accepts. */
#include <string.h>

#include "registry/authz.h"

#define CLOCK_SKEW_S 60

static int fail(char *why, size_t whylen, const char *msg)
{
    snprintf(why, whylen, "%s", msg);
    return -1;
}

/* May the node `signer` sign tokens for this registry? */
static bool trusted_signer(const fp_config *cfg, const char *signer)
{
    if (!strcmp(cfg->node_role, "fog") && !strcmp(cfg->node_id, signer)) return true;
    return fp_config_list_has(cfg->token_signers, signer);
}

fp_grant *fp_authz_x5c_grant(fp_authz *a, const char *token, size_t len, const json_t *header,
                             time_t now, char *why, size_t whylen)
{
    const char *alg = json_string_value(json_object_get(header, "alg"));
    if (!alg || strcmp(alg, "ES256") != 0) {
        fail(why, whylen, "token algorithm is not ES256");
        return NULL;
    }
    char signer[64];
    fp_key *key = NULL;
    if (fp_x5c_verify(a->trust, json_object_get(header, "x5c"), now, signer, &key, why, whylen) < 0)
        return NULL;
    json_t *claims = NULL;
    fp_grant *g = NULL;
    if (!trusted_signer(a->cfg, signer)) {
        snprintf(why, whylen, "signer %s is not trusted here", signer);
    } else if (fp_authz_node_revoked(a, signer)) {
        snprintf(why, whylen, "signer %s is revoked", signer);
    } else if (fp_jwt_verify_key(token, len, key, &claims, why, whylen) == 0 &&
               fp_grant_from_claims(claims, signer, a->cfg->token_service, now, CLOCK_SKEW_S, &g,
                                    why, whylen) == 0) {
        snprintf(g->signer, sizeof g->signer, "%s", signer);
    }
    json_decref(claims);
    fp_key_free(key);
    return g;
}
