/* Service definitions to and from JSON, with the validation that makes them
 * safe to hand to the runtime: a name that can be a path component, ports
 * in range, K=V environment, capabilities only from Docker's default set,
 * a numeric user, and no NUL hidden in a string or a key. */
#include "agent/spec.h"

#include "agent/enforce.h" /* FP_ENFORCE_WINDOW_MAX */

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const fp_default_capabilities[] = {
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
    NULL,
};

bool fp_capability_default(const char *cap)
{
    for (size_t i = 0; fp_default_capabilities[i]; i++)
        if (strcmp(cap, fp_default_capabilities[i]) == 0) return true;
    return false;
}

size_t fp_strv_len(const fp_strv v)
{
    size_t n = 0;
    while (v && v[n])
        n++;
    return n;
}

void fp_strv_free(fp_strv v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

int fp_strv_push(fp_strv *v, const char *s)
{
    size_t n = fp_strv_len(*v);
    char *copy = strdup(s);
    char **grown = copy ? realloc(*v, (n + 2) * sizeof *grown) : NULL;
    if (!grown) {
        free(copy);
        return -1;
    }
    grown[n] = copy;
    grown[n + 1] = NULL;
    *v = grown;
    return 0;
}

void fp_service_init(fp_service *s)
{
    memset(s, 0, sizeof *s);
    s->restart = FP_RESTART_ALWAYS;
    s->stop_grace_s = 10;
}

void fp_service_free(fp_service *s)
{
    fp_strv_free(s->entrypoint);
    fp_strv_free(s->cmd);
    fp_strv_free(s->env);
    fp_strv_free(s->capabilities);
    fp_strv_free(s->host_paths);
    fp_service_init(s);
}

static const char *const restart_names[] = {"always", "on-failure", "never"};

const char *fp_restart_name(fp_restart r)
{
    return (unsigned)r < 3 ? restart_names[r] : "always";
}

int fp_restart_parse(const char *s, fp_restart *out)
{
    for (unsigned i = 0; i < 3; i++)
        if (strcmp(s, restart_names[i]) == 0) {
            *out = (fp_restart)i;
            return 0;
        }
    return -1;
}

static int copy_str(const json_t *v, const char *key, char *dst, size_t cap, fp_error *err)
{
    if (!json_is_string(v)) return fp_error_set(err, 0, "%s: expected a string", key);
    if (json_string_length(v) >= cap)
        return fp_error_set(err, 0, "%s: longer than %zu characters", key, cap - 1);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return fp_error_set(err, 0, "%s: contains a NUL byte", key);
    memcpy(dst, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

static int copy_strv(const json_t *v, const char *key, fp_strv *dst, fp_error *err)
{
    if (!json_is_array(v)) return fp_error_set(err, 0, "%s: expected an array of strings", key);
    fp_strv_free(*dst);
    *dst = calloc(1, sizeof **dst); /* an empty list is not the same as none */
    if (!*dst) return fp_error_set(err, ENOMEM, "%s", key);
    size_t i;
    json_t *it;
    json_array_foreach(v, i, it)
    {
        if (!json_is_string(it) || strlen(json_string_value(it)) != json_string_length(it))
            return fp_error_set(err, 0, "%s[%zu]: expected a string", key, i);
        if (fp_strv_push(dst, json_string_value(it)) < 0)
            return fp_error_set(err, ENOMEM, "%s", key);
    }
    return 0;
}

/* An absolute path without "..", "." or empty components. */
static bool abs_path_ok(const char *p, size_t len)
{
    if (len == 0 || len >= 512 || p[0] != '/') return false;
    if (len == 1) return true;
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        while (j < len && p[j] != '/')
            j++;
        size_t n = j - i - 1;
        if (n == 0 || (n == 1 && p[i + 1] == '.') || (n == 2 && !memcmp(p + i + 1, "..", 2)))
            return false;
        i = j;
    }
    return true;
}

int fp_host_path_parse(const char *spec, char host[512], char ctr[512], bool *ro)
{
    if (strchr(spec, ',')) return -1;
    const char *c1 = strchr(spec, ':');
    if (!c1) return -1;
    const char *c2 = strchr(c1 + 1, ':');
    size_t hl = (size_t)(c1 - spec), cl = c2 ? (size_t)(c2 - c1 - 1) : strlen(c1 + 1);
    if (c2 && strcmp(c2 + 1, "ro") != 0) return -1;
    if (!abs_path_ok(spec, hl) || !abs_path_ok(c1 + 1, cl) || (cl == 1)) return -1;
    memcpy(host, spec, hl);
    host[hl] = '\0';
    memcpy(ctr, c1 + 1, cl);
    ctr[cl] = '\0';
    *ro = c2 != NULL;
    return 0;
}

static int env_valid(const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv) return 0;
    for (const char *p = kv; p < eq; p++)
        if (!isalnum((unsigned char)*p) && *p != '_') return 0;
    return !isdigit((unsigned char)kv[0]);
}

/* "uid[:gid]": decimal ids, as the runtime sets them without the image's
 * passwd; 4294967295 is (uid_t)-1, "leave unchanged" to setresuid. */
static bool user_valid(const char *u)
{
    if (!u[0]) return true; /* keep the image's */
    for (int part = 0; part < 2; part++) {
        uint64_t id = 0;
        const char *start = u;
        for (; *u >= '0' && *u <= '9'; u++) {
            id = id * 10 + (uint64_t)(*u - '0');
            if (id >= UINT32_MAX) return false;
        }
        if (u == start) return false;
        if (!*u) return true;
        if (*u != ':' || part == 1) return false;
        u++;
    }
    return false;
}

static int parse_field(const char *key, const json_t *v, fp_service *s, fp_error *err)
{
    if (strcmp(key, "name") == 0) return copy_str(v, key, s->name, sizeof s->name, err);
    if (strcmp(key, "image") == 0) return copy_str(v, key, s->image, sizeof s->image, err);
    if (strcmp(key, "digest") == 0) return copy_str(v, key, s->digest, sizeof s->digest, err);
    if (strcmp(key, "node") == 0) return copy_str(v, key, s->node, sizeof s->node, err);
    if (strcmp(key, "role") == 0) return copy_str(v, key, s->role, sizeof s->role, err);
    if (strcmp(key, "labels") == 0 || strcmp(key, "prefer_label") == 0) {
        bool one = key[0] == 'p';
        char *dst = one ? s->prefer_label : s->labels;
        if (copy_str(v, key, dst, FP_LABELS_MAX + 1, err) < 0) return -1;
        if (dst[0] && !fp_labels_valid(dst, one ? 1 : FP_LABELS_MAX))
            return fp_error_set(err, 0, "%s: \"%s\" is not %s", key, dst,
                                one ? "one k=v label" : "k=v labels, comma-separated");
        return 0;
    }
    if (strcmp(key, "near") == 0) {
        if (copy_str(v, key, s->near, sizeof s->near, err) < 0) return -1;
        for (const char *c = s->near; *c; c++)
            if (!isalnum((unsigned char)*c) && !strchr("._-", *c))
                return fp_error_set(err, 0, "near: \"%s\" is not a node id", s->near);
        return 0;
    }
    if (strcmp(key, "user") == 0) {
        if (copy_str(v, key, s->user, sizeof s->user, err) < 0) return -1;
        if (!user_valid(s->user))
            return fp_error_set(err, 0, "user: \"%s\" is not uid[:gid]", s->user);
        return 0;
    }
    if (strcmp(key, "entrypoint") == 0) return copy_strv(v, key, &s->entrypoint, err);
    if (strcmp(key, "cmd") == 0) return copy_strv(v, key, &s->cmd, err);
    if (strcmp(key, "env") == 0) return copy_strv(v, key, &s->env, err);
    if (strcmp(key, "capabilities") == 0) return copy_strv(v, key, &s->capabilities, err);
    if (strcmp(key, "host_paths") == 0) {
        if (copy_strv(v, key, &s->host_paths, err) < 0) return -1;
        char host[512], ctr[512];
        bool ro;
        for (size_t i = 0; s->host_paths[i]; i++)
            if (fp_host_path_parse(s->host_paths[i], host, ctr, &ro) < 0)
                return fp_error_set(err, 0,
                                    "host_paths: \"%s\" is not HOST:CONTAINER[:ro] (absolute "
                                    "paths, not /)",
                                    s->host_paths[i]);
        return 0;
    }
    if (strcmp(key, "writable") == 0) {
        if (!json_is_boolean(v)) return fp_error_set(err, 0, "writable: expected true or false");
        s->writable = json_is_true(v);
        return 0;
    }
    if (strcmp(key, "always_on") == 0) {
        if (!json_is_boolean(v)) return fp_error_set(err, 0, "always_on: expected true or false");
        s->always_on = json_is_true(v);
        return 0;
    }
    if (strcmp(key, "replicas") == 0) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > FP_SERVICE_REPLICAS_MAX)
            return fp_error_set(err, 0, "replicas: expected 0..%d", FP_SERVICE_REPLICAS_MAX);
        s->replicas = (unsigned)json_integer_value(v);
        return 0;
    }
    if (strcmp(key, "restart") == 0) {
        /* a NUL inside would make "always\0junk" read as "always" */
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
            fp_restart_parse(json_string_value(v), &s->restart) < 0)
            return fp_error_set(err, 0, "restart: expected always, on-failure or never");
        return 0;
    }
    if (strcmp(key, "ports") == 0) {
        if (!json_is_array(v) || json_array_size(v) > FP_SERVICE_PORTS)
            return fp_error_set(err, 0, "ports: expected at most %d port numbers",
                                FP_SERVICE_PORTS);
        s->nports = 0;
        size_t i;
        json_t *it;
        json_array_foreach(v, i, it)
        {
            if (!json_is_integer(it) || json_integer_value(it) < 1 ||
                json_integer_value(it) > 65535)
                return fp_error_set(err, 0, "ports[%zu]: expected 1..65535", i);
            s->ports[s->nports++] = (uint16_t)json_integer_value(it);
        }
        return 0;
    }
    if (strcmp(key, "memory") == 0 || strcmp(key, "pids") == 0 ||
        strcmp(key, "stop_grace_s") == 0) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return fp_error_set(err, 0, "%s: expected a non-negative integer", key);
        json_int_t n = json_integer_value(v);
        if (key[0] == 'm')
            s->memory = (uint64_t)n;
        else if (key[0] == 'p') {
            if (n > UINT32_MAX) return fp_error_set(err, 0, "pids: too large");
            s->pids = (uint32_t)n;
        } else {
            if (n > 3600) return fp_error_set(err, 0, "stop_grace_s: at most 3600");
            s->stop_grace_s = (unsigned)n;
        }
        return 0;
    }
    if (strcmp(key, "max_memory") == 0 || strcmp(key, "max_pids") == 0 ||
        strcmp(key, "window_s") == 0) {
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return fp_error_set(err, 0, "%s: expected a non-negative integer", key);
        json_int_t n = json_integer_value(v);
        if (!strcmp(key, "max_memory"))
            s->max_memory = (uint64_t)n;
        else if (!strcmp(key, "max_pids")) {
            if (n > UINT32_MAX) return fp_error_set(err, 0, "max_pids: too large");
            s->max_pids = (uint32_t)n;
        } else {
            if (n > FP_ENFORCE_WINDOW_MAX)
                return fp_error_set(err, 0, "window_s: at most %d", FP_ENFORCE_WINDOW_MAX);
            s->window_s = (unsigned)n;
        }
        return 0;
    }
    if (strcmp(key, "max_cpu") == 0) {
        if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0 ||
            json_number_value(v) > 1024)
            return fp_error_set(err, 0, "max_cpu: expected a number from 0 to 1024");
        s->max_cpu = json_number_value(v);
        return 0;
    }
    if (strcmp(key, "cpus") == 0) {
        if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0 ||
            json_number_value(v) > 1024)
            return fp_error_set(err, 0, "cpus: expected a number from 0 to 1024");
        s->cpus = json_number_value(v);
        return 0;
    }
    return fp_error_set(err, 0, "unknown field \"%s\"", key);
}

int fp_service_from_json(const json_t *j, fp_service *s, fp_error *err)
{
    fp_service_init(s);
    if (!json_is_object(j)) return fp_error_set(err, 0, "service: expected a JSON object");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v)
    {
        /* a key with a NUL ("name\0x", which code can build with
         * json_object_setn) would read as another; looking it up by its C
         * string finds a different value then */
        if (json_object_get(j, key) != v) {
            fp_error_set(err, 0, "a field name contains a NUL byte");
            goto fail;
        }
        if (json_is_null(v)) continue;
        if (parse_field(key, v, s, err) < 0) goto fail;
    }
    if (!fp_service_name_valid(s->name)) {
        fp_error_set(err, 0, "name: \"%s\" is not a service name ([a-z0-9][a-z0-9_-]*, at most %d)",
                     s->name, FP_SERVICE_NAME_MAX);
        goto fail;
    }
    if (!s->image[0]) {
        fp_error_set(err, 0, "image: required");
        goto fail;
    }
    for (size_t i = 0; s->env && s->env[i]; i++)
        if (!env_valid(s->env[i])) {
            fp_error_set(err, 0, "env: \"%s\" is not NAME=VALUE", s->env[i]);
            goto fail;
        }
    for (size_t i = 0; s->capabilities && s->capabilities[i]; i++)
        if (!fp_capability_default(s->capabilities[i])) {
            fp_error_set(err, 0, "capabilities: %s is not allowed (at most Docker's default set)",
                         s->capabilities[i]);
            goto fail;
        }
    /* a policy limit at or above the hard limit would never be seen over
     * (the kernel holds the service below it): say so rather than ignore it */
    if (s->memory && s->max_memory >= s->memory) {
        fp_error_set(err, 0, "max_memory: must be below memory (the hard limit)");
        goto fail;
    }
    if (s->pids && s->max_pids >= s->pids) {
        fp_error_set(err, 0, "max_pids: must be below pids (the hard limit)");
        goto fail;
    }
    return 0;
fail:
    fp_service_free(s);
    return -1;
}

static json_t *strv_json(const fp_strv v)
{
    if (!v) return json_null();
    json_t *a = json_array();
    for (size_t i = 0; v[i]; i++)
        json_array_append_new(a, json_string(v[i]));
    return a;
}

json_t *fp_service_to_json(const fp_service *s)
{
    json_t *ports = json_array();
    for (unsigned i = 0; i < s->nports; i++)
        json_array_append_new(ports, json_integer(s->ports[i]));
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:I, s:f, s:I, s:o, s:b, "
                  "s:s, s:s, s:I}",
                  "name", s->name, "image", s->image, "digest", s->digest, "node", s->node, "role",
                  s->role, "entrypoint", strv_json(s->entrypoint), "cmd", strv_json(s->cmd), "env",
                  strv_json(s->env), "ports", ports, "memory", (json_int_t)s->memory, "cpus",
                  s->cpus, "pids", (json_int_t)s->pids, "capabilities", strv_json(s->capabilities),
                  "writable", s->writable, "user", s->user, "restart", fp_restart_name(s->restart),
                  "stop_grace_s", (json_int_t)s->stop_grace_s);
    /* the placement fields only when set: a definition without them keeps
     * its canonical form (and the generation agents compare) */
    if (j && s->always_on) json_object_set_new(j, "always_on", json_true());
    if (j && s->replicas) json_object_set_new(j, "replicas", json_integer(s->replicas));
    if (j && s->labels[0]) json_object_set_new(j, "labels", json_string(s->labels));
    if (j && s->prefer_label[0])
        json_object_set_new(j, "prefer_label", json_string(s->prefer_label));
    if (j && s->near[0]) json_object_set_new(j, "near", json_string(s->near));
    if (j && s->host_paths) json_object_set_new(j, "host_paths", strv_json(s->host_paths));
    /* The policy fields only when set: a definition without a policy
     * encodes as before, so its digest (the agents' generation) stays the
     * same and an older agent can still read it. */
    if (j && s->max_cpu > 0) json_object_set_new(j, "max_cpu", json_real(s->max_cpu));
    if (j && s->max_memory)
        json_object_set_new(j, "max_memory", json_integer((json_int_t)s->max_memory));
    if (j && s->max_pids) json_object_set_new(j, "max_pids", json_integer(s->max_pids));
    if (j && s->window_s) json_object_set_new(j, "window_s", json_integer(s->window_s));
    return j;
}
