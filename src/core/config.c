#include "core/config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/cleanup.h"
#include "core/log.h"

/* K_ACCESS: public | authenticated, kept as a bool (true: public) */
enum key_type { K_STR, K_UINT, K_SIZE, K_DURATION, K_DURATION_MS, K_BOOL, K_LOGLEVEL, K_ACCESS };

struct key {
    const char *section;
    const char *name;
    enum key_type type;
    size_t offset;
    size_t size; /* for strings: capacity */
};

#define STR(sec, key, field)                                                                       \
    {                                                                                              \
        sec, key, K_STR, offsetof(fp_config, field), sizeof(((fp_config *)0)->field)               \
    }
#define NUM(sec, key, type, field)                                                                 \
    {                                                                                              \
        sec, key, type, offsetof(fp_config, field), 0                                              \
    }

static const struct key keys[] = {
    STR("node", "id", node_id),
    STR("node", "role", node_role),
    STR("node", "cloud", node_cloud),
    STR("node", "join_token", node_join_token),
    STR("node", "ca", node_ca),
    STR("node", "cacert", node_cacert),
    NUM("node", "revocation_interval", K_DURATION, node_revocation_interval_s),
    STR("node", "url", node_url),
    STR("node", "parent", node_parent),
    NUM("node", "capacity", K_SIZE, node_capacity),
    NUM("federation", "enabled", K_BOOL, fed_enabled),
    STR("federation", "peers", fed_peers),
    NUM("federation", "peer_order_config", K_BOOL, fed_peer_order_config),
    NUM("federation", "tag_ttl", K_DURATION, fed_tag_ttl_s),
    NUM("federation", "peer_timeout", K_DURATION, fed_peer_timeout_s),
    NUM("federation", "hedge_after", K_DURATION_MS, fed_hedge_after_ms),
    NUM("federation", "heartbeat", K_DURATION, fed_heartbeat_s),
    STR("federation", "replication", fed_replication),
    NUM("agent", "enabled", K_BOOL, agent_enabled),
    STR("agent", "runtime", agent_runtime),
    NUM("agent", "max_layer_bytes", K_SIZE, agent_max_layer_bytes),
    NUM("agent", "log_max", K_SIZE, agent_log_max),
    NUM("agent", "sync", K_DURATION, agent_sync_s),
    NUM("control", "suspect_after", K_DURATION, control_suspect_s),
    NUM("control", "dead_after", K_DURATION, control_dead_s),
    STR("control", "etcd", control_etcd),
    NUM("control", "lease", K_DURATION, control_lease_s),
    STR("control", "allowed_capabilities", control_allowed_caps),
    STR("control", "allowed_ports", control_allowed_ports),
    STR("server", "listen", listen),
    NUM("server", "threads", K_UINT, threads),
    NUM("server", "timeout", K_DURATION, timeout_s),
    NUM("server", "max_connections", K_UINT, max_connections),
    NUM("server", "max_connections_per_ip", K_UINT, max_connections_per_ip),
    STR("storage", "data", data_dir),
    NUM("storage", "delete", K_BOOL, delete_enabled),
    NUM("storage", "gc_grace", K_DURATION, gc_grace_s),
    NUM("storage", "upload_expiry", K_DURATION, upload_expiry_s),
    NUM("storage", "cache_max", K_SIZE, cache_max),
    STR("tls", "cert", tls_cert),
    STR("tls", "key", tls_key),
    STR("tls", "client_ca", tls_client_ca),
    NUM("tls", "require_client_cert", K_BOOL, tls_require_client_cert),
    STR("auth", "htpasswd", htpasswd),
    STR("auth", "realm", realm),
    STR("auth", "policy", policy),
    STR("auth", "token_realm", token_realm),
    STR("auth", "token_service", token_service),
    STR("auth", "token_issuer", token_issuer),
    STR("auth", "token_keys", token_keys),
    STR("auth", "token_key", token_key),
    STR("auth", "token_audiences", token_audiences),
    STR("auth", "token_signers", token_signers),
    NUM("auth", "token_ttl", K_DURATION, token_ttl_s),
    NUM("auth", "login_failures", K_UINT, login_failures),
    NUM("limits", "max_manifest_size", K_SIZE, max_manifest_bytes),
    NUM("limits", "max_blob_size", K_SIZE, max_blob_bytes),
    NUM("limits", "max_page", K_UINT, max_page),
    {"log", "level", K_LOGLEVEL, offsetof(fp_config, log_level),
     sizeof(((fp_config *)0)->log_level)},
    STR("log", "file", log_file),
    NUM("log", "access", K_BOOL, access_log),
    NUM("metrics", "access", K_ACCESS, metrics_public),
};

void fp_config_defaults(fp_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen, sizeof cfg->listen, "127.0.0.1:5000");
    cfg->timeout_s = 60;
    cfg->node_revocation_interval_s = 10;
    cfg->fed_enabled = true;
    cfg->fed_tag_ttl_s = 60;
    cfg->fed_peer_timeout_s = 3;
    cfg->fed_hedge_after_ms = 500;
    cfg->fed_heartbeat_s = 1; /* the cloud's failure detection ([control]) counts on it */
    cfg->agent_max_layer_bytes = 8ULL << 30;
    cfg->agent_log_max = 1 << 20;
    cfg->agent_sync_s = 2;
    /* two missed 1-2 s heartbeats make a node suspect; twice that, dead */
    cfg->control_suspect_s = 3;
    cfg->control_dead_s = 6;
    cfg->control_lease_s = 5;
    cfg->max_connections = 1024;
    cfg->max_connections_per_ip = 256;
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "/var/lib/fogport");
    cfg->delete_enabled = true;
    cfg->gc_grace_s = 3600;
    cfg->upload_expiry_s = 86400;
    snprintf(cfg->realm, sizeof cfg->realm, "fogport");
    snprintf(cfg->token_service, sizeof cfg->token_service, "fogport");
    snprintf(cfg->token_issuer, sizeof cfg->token_issuer, "fogport");
    cfg->token_ttl_s = 300;
    cfg->login_failures = 5;
    cfg->max_manifest_bytes = 4 * 1024 * 1024;
    cfg->max_page = 1000;
    snprintf(cfg->log_level, sizeof cfg->log_level, "info");
    cfg->access_log = true;
}

bool fp_config_list_has(const char *list, const char *item)
{
    size_t il = strlen(item);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn(p, ", ");
        if (n && n == il && !memcmp(p, item, n)) return true;
        p += n;
    }
    return false;
}

int fp_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !isdigit((unsigned char)*s)) return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return -1;
    uint64_t mult = 1;
    if (*end) {
        char u = (char)toupper((unsigned char)*end);
        if (u == 'K')
            mult = 1ULL << 10;
        else if (u == 'M')
            mult = 1ULL << 20;
        else if (u == 'G')
            mult = 1ULL << 30;
        else if (u == 'T')
            mult = 1ULL << 40;
        else
            return -1;
        end++;
        if (strcasecmp(end, "ib") == 0 || strcasecmp(end, "b") == 0) end += strlen(end);
        if (*end) return -1;
    }
    if (v > UINT64_MAX / mult) return -1;
    *out = v * mult;
    return 0;
}

int fp_parse_duration(const char *s, unsigned *seconds)
{
    char *end;
    errno = 0;
    if (!s || !isdigit((unsigned char)*s)) return -1;
    unsigned long v = strtoul(s, &end, 10);
    if (errno) return -1;
    unsigned long mult = 1;
    if (*end) {
        if (end[1]) return -1;
        switch (*end) {
        case 's':
            mult = 1;
            break;
        case 'm':
            mult = 60;
            break;
        case 'h':
            mult = 3600;
            break;
        case 'd':
            mult = 86400;
            break;
        default:
            return -1;
        }
    }
    if (v > 0xffffffffUL / mult) return -1;
    *seconds = (unsigned)(v * mult);
    return 0;
}

int fp_parse_duration_ms(const char *s, unsigned *ms)
{
    size_t n = s ? strlen(s) : 0;
    if (n > 2 && !strcmp(s + n - 2, "ms")) {
        char digits[24];
        if (n - 2 >= sizeof digits) return -1;
        memcpy(digits, s, n - 2);
        digits[n - 2] = '\0';
        char *end;
        errno = 0;
        if (!isdigit((unsigned char)digits[0])) return -1;
        unsigned long v = strtoul(digits, &end, 10);
        if (errno || *end || v > 0xffffffffUL) return -1;
        *ms = (unsigned)v;
        return 0;
    }
    unsigned seconds;
    if (fp_parse_duration(s, &seconds) < 0 || seconds > 0xffffffffU / 1000) return -1;
    *ms = seconds * 1000;
    return 0;
}

int fp_parse_bool(const char *s, bool *out)
{
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") || !strcmp(s, "1"))
        *out = true;
    else if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") ||
             !strcmp(s, "0"))
        *out = false;
    else
        return -1;
    return 0;
}

int fp_config_set(fp_config *cfg, const char *section, const char *key, const char *value,
                  fp_error *err)
{
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const struct key *k = &keys[i];
        if (strcmp(k->section, section) != 0 || strcmp(k->name, key) != 0) continue;
        char *field = (char *)cfg + k->offset;
        uint64_t u64;
        switch (k->type) {
        case K_ACCESS:
            if (strcmp(value, "public") != 0 && strcmp(value, "authenticated") != 0)
                return fp_error_set(err, 0, "[%s] %s: '%s' is not public or authenticated", section,
                                    key, value);
            *(bool *)field = !strcmp(value, "public");
            return 0;
        case K_LOGLEVEL:
            if (fp_log_level_parse(value) < 0)
                return fp_error_set(err, 0,
                                    "[%s] %s: unknown level '%s' (debug, info, warn, error)",
                                    section, key, value);
            /* fallthrough */
        case K_STR:
            if (strlen(value) >= k->size)
                return fp_error_set(err, 0, "[%s] %s: value too long", section, key);
            memcpy(field, value, strlen(value) + 1);
            return 0;
        case K_UINT:
            if (fp_parse_size(value, &u64) < 0 || u64 > 0xffffffffULL)
                return fp_error_set(err, 0, "[%s] %s: '%s' is not a number", section, key, value);
            *(unsigned *)field = (unsigned)u64;
            return 0;
        case K_SIZE:
            if (fp_parse_size(value, (uint64_t *)field) < 0)
                return fp_error_set(err, 0, "[%s] %s: '%s' is not a size (e.g. 4MiB)", section, key,
                                    value);
            return 0;
        case K_DURATION:
            if (fp_parse_duration(value, (unsigned *)field) < 0)
                return fp_error_set(err, 0, "[%s] %s: '%s' is not a duration (e.g. 30s, 1h)",
                                    section, key, value);
            return 0;
        case K_DURATION_MS:
            if (fp_parse_duration_ms(value, (unsigned *)field) < 0)
                return fp_error_set(err, 0, "[%s] %s: '%s' is not a duration (e.g. 500ms, 2s)",
                                    section, key, value);
            return 0;
        case K_BOOL:
            if (fp_parse_bool(value, (bool *)field) < 0)
                return fp_error_set(err, 0, "[%s] %s: '%s' is not true/false", section, key, value);
            return 0;
        }
    }
    return fp_error_set(err, 0, "unknown setting [%s] %s", section, key);
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int fp_config_load(fp_config *cfg, const char *path, fp_error *err)
{
    cleanup_fclose FILE *f = fopen(path, "re");
    if (!f) return fp_error_set(err, errno, "open config %s", path);
    char line[4096];
    char section[64] = "";
    unsigned lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            /* the line did not fit: never read its tail as a line of its own */
            int c = fgetc(f);
            if (c != EOF && c != '\n')
                return fp_error_set(err, 0, "%s:%u: line too long", path, lineno);
        }
        char *s = trim(line);
        if (*s == '\0' || *s == '#' || *s == ';') continue;
        if (*s == '[') {
            char *close = strchr(s, ']');
            if (!close || close[1] != '\0' || close - s - 1 >= (long)sizeof section)
                return fp_error_set(err, 0, "%s:%u: bad section header", path, lineno);
            *close = '\0';
            snprintf(section, sizeof section, "%s", trim(s + 1));
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) return fp_error_set(err, 0, "%s:%u: expected key = value", path, lineno);
        *eq = '\0';
        char *key = trim(s);
        char *value = trim(eq + 1);
        /* strip matching quotes */
        size_t vl = strlen(value);
        if (vl >= 2 && (value[0] == '"' || value[0] == '\'') && value[vl - 1] == value[0]) {
            value[vl - 1] = '\0';
            value++;
        }
        if (fp_config_set(cfg, section, key, value, err) < 0)
            return fp_error_prefix(err, "%s:%u", path, lineno);
    }
    return 0;
}
