/* Choosing a platform's manifest from an index, the way container
 * runtimes do (containerd's platforms matcher): os and architecture must
 * match, the variant is preferred exact, then absent, then (arm only) an
 * older one the CPU also runs. */
#include "core/platform.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "core/buf.h"

/* Go's names for a few other spellings. */
static void normalise(fp_platform *p)
{
    static const struct {
        const char *from, *arch, *variant;
    } alias[] = {
        {"x86_64", "amd64", ""}, {"x86-64", "amd64", ""}, {"aarch64", "arm64", ""},
        {"i386", "386", ""},     {"i686", "386", ""},     {"armhf", "arm", "v7"},
        {"armel", "arm", "v6"},
    };
    for (size_t i = 0; i < sizeof alias / sizeof alias[0]; i++)
        if (!strcmp(p->arch, alias[i].from)) {
            snprintf(p->arch, sizeof p->arch, "%s", alias[i].arch);
            if (!p->variant[0]) snprintf(p->variant, sizeof p->variant, "%s", alias[i].variant);
        }
    /* "8" is "v8"; arm64's only variant is v8, which is also no variant */
    if (p->variant[0] >= '0' && p->variant[0] <= '9') {
        char v[sizeof p->variant];
        snprintf(v, sizeof v, "v%.14s", p->variant);
        snprintf(p->variant, sizeof p->variant, "%s", v);
    }
    if (!strcmp(p->arch, "arm64") && !strcmp(p->variant, "v8")) p->variant[0] = '\0';
}

void fp_platform_host(fp_platform *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->os, sizeof p->os, "linux");
    struct utsname u;
    const char *m = uname(&u) == 0 ? u.machine : "x86_64";
    if (!strncmp(m, "armv", 4) && m[4] >= '5' && m[4] <= '8') {
        snprintf(p->arch, sizeof p->arch, "arm");
        snprintf(p->variant, sizeof p->variant, "v%c", m[4]);
    } else {
        snprintf(p->arch, sizeof p->arch, "%s", m);
    }
    normalise(p);
}

void fp_platform_str(const fp_platform *p, char *out, size_t n)
{
    fp_platform q = *p;
    normalise(&q);
    /* arm64 shows its implicit v8 as Go tools do not: plain */
    snprintf(out, n, "%s/%s%s%s", q.os, q.arch, q.variant[0] ? "/" : "", q.variant);
}

/* How well have fits want: 0 not at all, higher is better. */
static int score(const fp_platform *want, const fp_platform *have)
{
    if (strcmp(want->os, have->os) != 0 || strcmp(want->arch, have->arch) != 0) return 0;
    if (!strcmp(want->variant, have->variant)) return 100;
    if (!have->variant[0]) return 50;
    /* arm: an older variant runs on a newer CPU (v7 runs v6 and v5) */
    if (!strcmp(want->arch, "arm") && want->variant[0] == 'v' && have->variant[0] == 'v' &&
        !want->variant[2] && !have->variant[2] && have->variant[1] < want->variant[1])
        return 10 + (have->variant[1] - '0');
    return 0;
}

static void field(json_t *p, const char *key, char *out, size_t n)
{
    const char *s = json_string_value(json_object_get(p, key));
    snprintf(out, n, "%s", s ? s : "");
}

int fp_platform_pick(const char *index_body, size_t len, const fp_platform *want,
                     char out[FP_DIGEST_MAX], char *why, size_t whylen)
{
    out[0] = '\0';
    fp_platform w = *want;
    normalise(&w);
    char wants[96];
    fp_platform_str(&w, wants, sizeof wants);
    json_t *j = json_loadb(index_body, len, 0, NULL);
    json_t *list = json_object_get(j, "manifests");
    if (!json_is_array(list)) {
        json_decref(j);
        snprintf(why, whylen, "not an index");
        return -1;
    }
    int best = 0;
    fp_buf seen = FP_BUF_INIT;
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m)
    {
        json_t *p = json_object_get(m, "platform");
        const char *d = json_string_value(json_object_get(m, "digest"));
        fp_platform have = {0};
        field(p, "os", have.os, sizeof have.os);
        field(p, "architecture", have.arch, sizeof have.arch);
        field(p, "variant", have.variant, sizeof have.variant);
        normalise(&have);
        char hs[96];
        fp_platform_str(&have, hs, sizeof hs);
        if (json_is_object(p) && seen.len < 400)
            fp_buf_printf(&seen, "%s%s", seen.len ? ", " : "", hs);
        int s = json_is_object(p) && d && fp_digest_valid(d) ? score(&w, &have) : 0;
        if (s > best) {
            best = s;
            snprintf(out, FP_DIGEST_MAX, "%s", d);
        }
    }
    if (!best)
        snprintf(why, whylen, "the index has no manifest for %s (it has %s)", wants,
                 seen.len ? seen.data : "no platforms");
    fp_buf_free(&seen);
    json_decref(j);
    return best ? 0 : -1;
}
