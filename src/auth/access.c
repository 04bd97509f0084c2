#include "auth/access.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cleanup.h"
#include "core/fs.h"

static const struct {
    const char *name;
    unsigned bit;
} action_names[] = {
    {"pull", FP_ACT_PULL},
    {"push", FP_ACT_PUSH},
    {"delete", FP_ACT_DELETE},
    {"catalog", FP_ACT_CATALOG},
};

int fp_actions_parse(const char *list, size_t len, unsigned *out)
{
    unsigned a = 0;
    size_t i = 0;
    if (len == 1 && list[0] == '*') {
        *out = FP_ACT_PULL | FP_ACT_PUSH | FP_ACT_DELETE | FP_ACT_CATALOG;
        return 0;
    }
    while (i < len) {
        size_t start = i;
        while (i < len && list[i] != ',')
            i++;
        size_t wl = i - start;
        bool known = false;
        for (size_t k = 0; k < sizeof action_names / sizeof action_names[0]; k++) {
            if (strlen(action_names[k].name) == wl &&
                memcmp(action_names[k].name, list + start, wl) == 0) {
                a |= action_names[k].bit;
                known = true;
            }
        }
        if (!known && wl) return -1;
        i++;
    }
    *out = a;
    return 0;
}

json_t *fp_actions_json(unsigned actions)
{
    json_t *arr = json_array();
    for (size_t k = 0; k < 3; k++)
        if (actions & action_names[k].bit)
            json_array_append_new(arr, json_string(action_names[k].name));
    if (actions & FP_ACT_CATALOG) json_array_append_new(arr, json_string("*"));
    return arr;
}

int fp_scope_parse(const char *s, size_t len, fp_scope *out)
{
    memset(out, 0, sizeof *out);
    const char *c1 = memchr(s, ':', len);
    if (!c1) return -1;
    const char *c2 = NULL; /* last ':' */
    for (size_t i = len; i > (size_t)(c1 - s) + 1; i--)
        if (s[i - 1] == ':') {
            c2 = s + i - 1;
            break;
        }
    if (!c2) return -1;
    size_t tl = (size_t)(c1 - s), nl = (size_t)(c2 - c1 - 1);
    const char *acts = c2 + 1;
    size_t al = len - (size_t)(acts - s);
    if (tl == 10 && memcmp(s, "repository", 10) == 0) {
        /* "repository(plugin):name" resource classes are not used here */
        if (!fp_name_valid(c1 + 1, nl)) return -1;
        if (fp_actions_parse(acts, al, &out->actions) < 0) return -1;
        out->actions &= ~(unsigned)FP_ACT_CATALOG;
        memcpy(out->type, "repository", 11);
    } else if (tl == 8 && memcmp(s, "registry", 8) == 0) {
        if (nl != 7 || memcmp(c1 + 1, "catalog", 7) != 0 || al != 1 || acts[0] != '*') return -1;
        memcpy(out->type, "registry", 9);
        out->actions = FP_ACT_CATALOG;
    } else {
        return -1;
    }
    memcpy(out->name, c1 + 1, nl);
    out->name[nl] = '\0';
    return 0;
}

bool fp_pattern_match(const char *pattern, const char *name)
{
    /* no FNM_PATHNAME: a star crosses slashes, so fog-1/STAR covers nested names */
    return fnmatch(pattern, name, 0) == 0;
}

/* ---- policy ---- */

struct rule {
    char who[80]; /* "user:NAME", "node:NAME", "role:ROLE", "authenticated", "anonymous", "*" */
    char pattern[FP_NAME_MAX + 8];
    unsigned actions;
};

struct fp_policy {
    int refs; /* a reloaded policy replaces this one while requests still use it */
    struct rule *rules;
    size_t n;
};

static bool who_valid(const char *w)
{
    return !strcmp(w, "*") || !strcmp(w, "authenticated") || !strcmp(w, "anonymous") ||
           (!strncmp(w, "user:", 5) && w[5]) || (!strncmp(w, "node:", 5) && w[5]) ||
           (!strncmp(w, "role:", 5) && w[5]);
}

static bool pattern_valid(const char *p)
{
    if (!*p) return false;
    for (const char *c = p; *c; c++)
        if (!(islower((unsigned char)*c) || isdigit((unsigned char)*c) || strchr("._-/*{}?", *c)))
            return false;
    return true;
}

int fp_policy_parse(const char *text, const char *origin, fp_policy **out, fp_error *err)
{
    fp_policy *p = calloc(1, sizeof *p);
    if (!p) return fp_error_set(err, ENOMEM, "policy");
    p->refs = 1;
    size_t cap = 0;
    unsigned lineno = 0;
    const char *line = text;
    while (line && *line) {
        lineno++;
        const char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) : strlen(line);
        char buf[512];
        if (ll >= sizeof buf) {
            fp_policy_unref(p);
            return fp_error_set(err, 0, "%s:%u: line too long", origin, lineno);
        }
        memcpy(buf, line, ll);
        buf[ll] = '\0';
        line = nl ? nl + 1 : NULL;
        char *hash = strchr(buf, '#');
        if (hash) *hash = '\0';
        char who[96], pat[300], acts[96], extra[8];
        int n = sscanf(buf, "%95s %299s %95s %7s", who, pat, acts, extra);
        if (n <= 0) continue;
        struct rule r = {0};
        if (n != 3 || !who_valid(who) || strlen(who) >= sizeof r.who || !pattern_valid(pat) ||
            strlen(pat) >= sizeof r.pattern ||
            fp_actions_parse(acts, strlen(acts), &r.actions) < 0) {
            fp_policy_unref(p);
            return fp_error_set(err, 0,
                                "%s:%u: expected WHO REPOSITORIES ACTIONS (e.g. "
                                "\"role:fog {self}/* pull,push\")",
                                origin, lineno);
        }
        snprintf(r.who, sizeof r.who, "%s", who);
        snprintf(r.pattern, sizeof r.pattern, "%s", pat);
        if (p->n == cap) {
            cap = cap ? 2 * cap : 8;
            struct rule *g = realloc(p->rules, cap * sizeof *g);
            if (!g) {
                fp_policy_unref(p);
                return fp_error_set(err, ENOMEM, "policy");
            }
            p->rules = g;
        }
        p->rules[p->n++] = r;
    }
    *out = p;
    return 0;
}

int fp_policy_load(const char *path, fp_policy **out, fp_error *err)
{
    cleanup_free char *text = NULL;
    if (fp_read_file(path, 4 << 20, &text, NULL, err) < 0) return -1;
    return fp_policy_parse(text, path, out, err);
}

fp_policy *fp_policy_default(void)
{
    fp_policy *p = NULL;
    fp_error err;
    fp_policy_parse("authenticated * pull,push,delete,catalog\n", "default policy", &p, &err);
    return p;
}

fp_policy *fp_policy_ref(fp_policy *p)
{
    if (p) __atomic_add_fetch(&p->refs, 1, __ATOMIC_RELAXED);
    return p;
}

void fp_policy_unref(fp_policy *p)
{
    if (!p || __atomic_sub_fetch(&p->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    free(p->rules);
    free(p);
}

static bool applies(const struct rule *r, const fp_principal *p)
{
    bool anon = !strcmp(p->kind, "anonymous");
    if (!strcmp(r->who, "*")) return true;
    if (!strcmp(r->who, "anonymous")) return anon;
    if (!strcmp(r->who, "authenticated")) return !anon;
    if (anon) return false;
    if (!strncmp(r->who, "role:", 5)) return p->role && !strcmp(r->who + 5, p->role);
    size_t kl = strlen(p->kind);
    return !strncmp(r->who, p->kind, kl) && r->who[kl] == ':' && !strcmp(r->who + kl + 1, p->name);
}

/* pattern with {self} replaced by the principal's name */
static void expand(const struct rule *r, const fp_principal *p, char *out, size_t outlen)
{
    const char *self = strstr(r->pattern, "{self}");
    if (!self) {
        snprintf(out, outlen, "%s", r->pattern);
        return;
    }
    snprintf(out, outlen, "%.*s%s%s", (int)(self - r->pattern), r->pattern, p->name ? p->name : "",
             self + 6);
}

unsigned fp_policy_actions(const fp_policy *pol, const fp_principal *p, const char *repo)
{
    unsigned a = 0;
    for (size_t i = 0; pol && i < pol->n; i++) {
        const struct rule *r = &pol->rules[i];
        if (!applies(r, p)) continue;
        char pat[FP_NAME_MAX + 80];
        expand(r, p, pat, sizeof pat);
        if (fp_pattern_match(pat, repo)) a |= r->actions;
    }
    return a & ~(unsigned)FP_ACT_CATALOG;
}

bool fp_policy_may_list(const fp_policy *pol, const fp_principal *p)
{
    for (size_t i = 0; pol && i < pol->n; i++)
        if (applies(&pol->rules[i], p) && (pol->rules[i].actions & FP_ACT_CATALOG)) return true;
    return false;
}

json_t *fp_policy_pull_patterns(const fp_policy *pol, const fp_principal *p)
{
    json_t *arr = json_array();
    for (size_t i = 0; pol && i < pol->n; i++) {
        const struct rule *r = &pol->rules[i];
        if (!applies(r, p) || !(r->actions & FP_ACT_PULL)) continue;
        char pat[FP_NAME_MAX + 80];
        expand(r, p, pat, sizeof pat);
        json_array_append_new(arr, json_string(pat));
    }
    return arr;
}

/* ---- grants ---- */

static int fail(char *why, size_t whylen, const char *msg)
{
    snprintf(why, whylen, "%s", msg);
    return -1;
}

static bool audience_ok(const json_t *aud, const char *want)
{
    if (json_is_string(aud)) return !strcmp(json_string_value(aud), want);
    size_t i;
    json_t *v;
    json_array_foreach(aud, i,
                       v) if (json_is_string(v) && !strcmp(json_string_value(v), want)) return true;
    return false;
}

int fp_grant_from_claims(const json_t *claims, const char *issuer, const char *audience, time_t now,
                         unsigned skew, fp_grant **out, char *why, size_t whylen)
{
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    json_t *exp = json_object_get(claims, "exp");
    json_t *nbf = json_object_get(claims, "nbf");
    if (!iss || strcmp(iss, issuer) != 0) return fail(why, whylen, "token issuer not trusted");
    if (!audience_ok(json_object_get(claims, "aud"), audience))
        return fail(why, whylen, "token is for another service");
    /* compare against now -/+ skew: adding to a claim could overflow */
    if (!json_is_integer(exp) || json_integer_value(exp) < (json_int_t)now - (json_int_t)skew)
        return fail(why, whylen, "token expired");
    if (nbf &&
        (!json_is_integer(nbf) || json_integer_value(nbf) > (json_int_t)now + (json_int_t)skew))
        return fail(why, whylen, "token not yet valid");
    json_t *access = json_object_get(claims, "access");
    if (access && !json_is_array(access)) return fail(why, whylen, "malformed access claim");

    fp_grant *g = calloc(1, sizeof *g);
    size_t n = json_array_size(access);
    if (!g || !(g->scopes = calloc(n + 1, sizeof *g->scopes))) {
        free(g);
        return fail(why, whylen, "out of memory");
    }
    g->refs = 1;
    g->expires = (time_t)json_integer_value(exp);
    snprintf(g->subject, sizeof g->subject, "%s",
             json_string_value(json_object_get(claims, "sub")) ?: "");
    size_t i;
    json_t *e;
    json_array_foreach(access, i, e)
    {
        const char *type = json_string_value(json_object_get(e, "type"));
        const char *name = json_string_value(json_object_get(e, "name"));
        json_t *acts = json_object_get(e, "actions");
        if (!type || !name || !json_is_array(acts)) continue;
        fp_scope *sc = &g->scopes[g->nscopes];
        size_t k;
        json_t *a;
        unsigned bits = 0;
        json_array_foreach(acts, k, a)
        {
            unsigned b = 0;
            const char *s = json_string_value(a);
            if (s && fp_actions_parse(s, strlen(s), &b) == 0) bits |= b;
            if (s && !strcmp(type, "service") && !strcmp(s, "logs")) bits |= FP_ACT_LOGS;
        }
        if (!strcmp(type, "repository") && fp_name_valid(name, strlen(name))) {
            snprintf(sc->type, sizeof sc->type, "repository");
            snprintf(sc->name, sizeof sc->name, "%s", name);
            sc->actions = bits & ~(unsigned)FP_ACT_CATALOG;
            g->nscopes++;
        } else if (!strcmp(type, "service") && fp_service_name_valid(name) &&
                   (bits & FP_ACT_LOGS)) {
            snprintf(sc->type, sizeof sc->type, "service");
            snprintf(sc->name, sizeof sc->name, "%s", name);
            sc->actions = FP_ACT_LOGS;
            g->nscopes++;
        } else if (!strcmp(type, "registry") && !strcmp(name, "catalog") &&
                   (bits & FP_ACT_CATALOG)) {
            g->catalog = true;
        }
    }
    const char *kind =
        json_string_value(json_object_get(json_object_get(claims, "fogport"), "kind"));
    g->node = kind && !strcmp(kind, "node");
    json_t *pats = json_object_get(json_object_get(claims, "fogport"), "pull");
    if (g->catalog && json_is_array(pats)) {
        g->patterns = calloc(json_array_size(pats) + 1, sizeof *g->patterns);
        json_array_foreach(pats, i, e) if (g->patterns && json_is_string(e))
            g->patterns[g->npatterns++] = strdup(json_string_value(e));
    }
    *out = g;
    return 0;
}

fp_grant *fp_grant_ref(fp_grant *g)
{
    __atomic_add_fetch(&g->refs, 1, __ATOMIC_RELAXED);
    return g;
}

void fp_grant_unref(fp_grant *g)
{
    if (!g || __atomic_sub_fetch(&g->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    for (size_t i = 0; i < g->npatterns; i++)
        free(g->patterns[i]);
    free(g->patterns);
    free(g->scopes);
    free(g);
}

unsigned fp_grant_actions(const fp_grant *g, const char *repo, bool *mentioned)
{
    unsigned a = 0;
    bool m = false;
    for (size_t i = 0; i < g->nscopes; i++)
        if (!strcmp(g->scopes[i].type, "repository") && !strcmp(g->scopes[i].name, repo)) {
            a |= g->scopes[i].actions;
            m = true;
        }
    if (mentioned) *mentioned = m;
    return a;
}

bool fp_grant_service_logs(const fp_grant *g, const char *service)
{
    for (size_t i = 0; i < g->nscopes; i++)
        if (!strcmp(g->scopes[i].type, "service") && !strcmp(g->scopes[i].name, service) &&
            (g->scopes[i].actions & FP_ACT_LOGS))
            return true;
    return false;
}

bool fp_grant_lists(const fp_grant *g, const char *repo)
{
    for (size_t i = 0; i < g->npatterns; i++)
        if (g->patterns[i] && fp_pattern_match(g->patterns[i], repo)) return true;
    return false;
}
