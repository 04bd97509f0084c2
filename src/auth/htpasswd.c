#include "auth/htpasswd.h"

#include <crypt.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "core/buf.h"
#include "core/cleanup.h"
#include "core/fs.h"
#include "core/log.h"

#define CACHE_SLOTS 64
#define CACHE_TTL   300
/* a valid bcrypt hash of nothing anyone knows, for timing-equal refusals */
#define DUMMY_HASH "$2b$10$abcdefghijklmnopqrstuu5Vwh1gQ7lU4d8M3o7wqlSnSG8D0dMO"

struct entry {
    char user[64];
    char hash[128];
};

struct cached {
    unsigned char key[32];
    char user[64];
    time_t expires;
};

struct fp_auth {
    char path[1024];
    pthread_mutex_t lock;
    struct entry *entries;
    size_t nentries;
    struct timespec mtime;
    unsigned char salt[16];
    struct cached cache[CACHE_SLOTS];
};

/* Replace the entries with those of text (which is consumed by strtok). */
static int parse(fp_auth *a, char *text, fp_error *err)
{
    size_t cap = 8, n = 0;
    struct entry *e = calloc(cap, sizeof *e);
    if (!e) return fp_error_set(err, ENOMEM, "htpasswd");
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        line[strcspn(line, "\r")] = '\0';
        char *colon = strchr(line, ':');
        if (!colon || line[0] == '#') continue;
        *colon = '\0';
        if (strlen(line) >= sizeof e->user || strlen(colon + 1) >= sizeof e->hash) continue;
        if (strncmp(colon + 1, "$2", 2) != 0) {
            fp_warn("event=htpasswd_skip user=%s reason=\"only bcrypt hashes are accepted\"", line);
            continue;
        }
        if (n == cap) {
            struct entry *g = realloc(e, 2 * cap * sizeof *e);
            if (!g) {
                free(e);
                return fp_error_set(err, ENOMEM, "htpasswd");
            }
            e = g;
            cap *= 2;
        }
        snprintf(e[n].user, sizeof e[n].user, "%s", line);
        snprintf(e[n].hash, sizeof e[n].hash, "%s", colon + 1);
        n++;
    }
    free(a->entries);
    a->entries = e;
    a->nentries = n;
    memset(a->cache, 0, sizeof a->cache);
    return 0;
}

static int load(fp_auth *a, fp_error *err)
{
    cleanup_free char *text = NULL;
    if (fp_read_file(a->path, 16 << 20, &text, NULL, err) < 0) return -1;
    return parse(a, text, err);
}

int fp_auth_open_text(fp_auth **out, const char *text, fp_error *err)
{
    fp_auth *a = calloc(1, sizeof *a);
    char *copy = strdup(text);
    if (!a || !copy) {
        free(a);
        free(copy);
        return fp_error_set(err, ENOMEM, "auth");
    }
    pthread_mutex_init(&a->lock, NULL);
    int rc = fp_random_bytes(a->salt, sizeof a->salt) < 0 ? fp_error_set(err, errno, "random")
                                                          : parse(a, copy, err);
    OPENSSL_cleanse(copy, strlen(text));
    free(copy);
    if (rc < 0) {
        fp_auth_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

int fp_auth_open(fp_auth **out, const char *htpasswd_path, fp_error *err)
{
    fp_auth *a = calloc(1, sizeof *a);
    if (!a) return fp_error_set(err, ENOMEM, "auth");
    snprintf(a->path, sizeof a->path, "%s", htpasswd_path);
    pthread_mutex_init(&a->lock, NULL);
    struct stat st;
    if (stat(a->path, &st) < 0) {
        fp_error_set(err, errno, "htpasswd %s", a->path);
        fp_auth_free(a);
        return -1;
    }
    a->mtime = st.st_mtim;
    if (fp_random_bytes(a->salt, sizeof a->salt) < 0 || load(a, err) < 0) {
        fp_auth_free(a);
        return -1;
    }
    *out = a;
    return 0;
}

void fp_auth_free(fp_auth *a)
{
    if (!a) return;
    free(a->entries);
    pthread_mutex_destroy(&a->lock);
    OPENSSL_cleanse(a, sizeof *a);
    free(a);
}

static void reload_if_changed(fp_auth *a)
{
    struct stat st;
    if (!a->path[0] || stat(a->path, &st) < 0) return; /* from text: nothing to re-read */
    if (st.st_mtim.tv_sec == a->mtime.tv_sec && st.st_mtim.tv_nsec == a->mtime.tv_nsec) return;
    fp_error err;
    if (load(a, &err) == 0)
        a->mtime = st.st_mtim;
    else
        fp_warn("event=htpasswd_reload_failed error=\"%s\"", err.msg);
}

bool fp_basic_decode(const char *authorization, char name[64], char *pass, size_t passlen)
{
    if (!authorization || strncasecmp(authorization, "Basic ", 6) != 0) return false;
    const char *b64 = authorization + 6;
    while (*b64 == ' ')
        b64++;
    size_t bl = strlen(b64);
    if (bl == 0 || bl > 1024) return false;
    unsigned char decoded[800];
    int dl = EVP_DecodeBlock(decoded, (const unsigned char *)b64, (int)bl);
    if (dl < 0) return false;
    /* EVP_DecodeBlock counts '=' padding as zero bytes: drop them */
    for (size_t i = bl; i > 0 && b64[i - 1] == '='; i--)
        dl--;
    decoded[dl] = '\0';
    char *colon = memchr(decoded, ':', (size_t)dl);
    bool ok = colon && colon != (char *)decoded && (size_t)(colon - (char *)decoded) < 64 &&
              strlen(colon + 1) < passlen;
    if (ok) {
        *colon = '\0';
        snprintf(name, 64, "%s", (const char *)decoded);
        snprintf(pass, passlen, "%s", colon + 1);
    }
    OPENSSL_cleanse(decoded, sizeof decoded);
    return ok;
}

bool fp_auth_check(fp_auth *a, const char *authorization, char user[64])
{
    char name[64], pass[800];
    bool ok = fp_basic_decode(authorization, name, pass, sizeof pass) &&
              fp_auth_verify(a, name, pass, user);
    OPENSSL_cleanse(pass, sizeof pass);
    return ok;
}

bool fp_auth_verify(fp_auth *a, const char *name, const char *pass, char user[64])
{
    if (!name[0] || strlen(name) >= 64 || strlen(pass) > 1024) return false;
    /* cache key: salted hash of name and password, never the password */
    unsigned char key[32];
    unsigned kl = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, a->salt, sizeof a->salt);
    EVP_DigestUpdate(md, name, strlen(name) + 1);
    EVP_DigestUpdate(md, pass, strlen(pass));
    EVP_DigestFinal_ex(md, key, &kl);
    EVP_MD_CTX_free(md);

    time_t now = time(NULL);
    unsigned slot = key[0] % CACHE_SLOTS;
    pthread_mutex_lock(&a->lock);
    reload_if_changed(a);
    if (a->cache[slot].expires > now && CRYPTO_memcmp(a->cache[slot].key, key, 32) == 0) {
        snprintf(user, 64, "%s", a->cache[slot].user);
        pthread_mutex_unlock(&a->lock);
        return true;
    }
    char hash[128] = "";
    for (size_t i = 0; i < a->nentries; i++)
        if (strcmp(a->entries[i].user, name) == 0)
            snprintf(hash, sizeof hash, "%s", a->entries[i].hash);
    pthread_mutex_unlock(&a->lock);

    bool ok = false;
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (cd) {
        /* an unknown user costs the same time as a known one */
        const char *out = crypt_r(pass, hash[0] ? hash : DUMMY_HASH, cd);
        ok = hash[0] && out && out[0] != '*' && strlen(out) == strlen(hash) &&
             CRYPTO_memcmp(out, hash, strlen(hash)) == 0;
        OPENSSL_cleanse(cd, sizeof *cd);
        free(cd);
    }
    if (ok) {
        snprintf(user, 64, "%s", name);
        pthread_mutex_lock(&a->lock);
        memcpy(a->cache[slot].key, key, 32);
        snprintf(a->cache[slot].user, sizeof a->cache[slot].user, "%s", name);
        a->cache[slot].expires = now + CACHE_TTL;
        pthread_mutex_unlock(&a->lock);
    }
    return ok;
}

bool fp_htpasswd_user_valid(const char *user)
{
    size_t n = strlen(user);
    if (n == 0 || n > 63) return false;
    for (const char *p = user; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.' || *p == '@'))
            return false;
    return true;
}

/* The file without user's line (and whether it was there). */
static int without_user(const char *path, const char *user, fp_buf *out, bool *found, fp_error *err)
{
    *found = false;
    cleanup_free char *text = NULL;
    if (fp_read_file(path, 16 << 20, &text, NULL, err) < 0) {
        if (err->errnum != ENOENT) return -1;
        return 0; /* a new file */
    }
    size_t ul = strlen(user);
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        size_t ll = nl ? (size_t)(nl - line) : strlen(line);
        if (ll > ul && !strncmp(line, user, ul) && line[ul] == ':')
            *found = true;
        else if (ll)
            fp_buf_append(out, line, ll), fp_buf_puts(out, "\n");
        line = nl ? nl + 1 : NULL;
    }
    return 0;
}

int fp_htpasswd_set(const char *path, const char *user, const char *password, bool must_exist,
                    fp_error *err)
{
    if (!fp_htpasswd_user_valid(user))
        return fp_error_set(err, EINVAL, "invalid user name '%s'", user);
    if (strlen(password) < 8)
        return fp_error_set(err, EINVAL, "password must have at least 8 characters");
    cleanup_buf fp_buf text = FP_BUF_INIT;
    bool found;
    if (without_user(path, user, &text, &found, err) < 0) return -1;
    if (must_exist && !found) return fp_error_set(err, ENOENT, "no user '%s' in %s", user, path);
    char salt[64];
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (!cd) return fp_error_set(err, ENOMEM, "hash password");
    const char *hash = NULL;
    if (crypt_gensalt_rn("$2b$", 10, NULL, 0, salt, sizeof salt))
        hash = crypt_r(password, salt, cd);
    if (!hash || hash[0] == '*') {
        free(cd);
        return fp_error_set(err, EINVAL, "bcrypt is not available");
    }
    fp_buf_printf(&text, "%s:%s\n", user, hash);
    OPENSSL_cleanse(cd, sizeof *cd);
    free(cd);
    return fp_write_file_atomic(path, text.data, text.len, 0600, err);
}

int fp_htpasswd_delete(const char *path, const char *user, fp_error *err)
{
    cleanup_buf fp_buf text = FP_BUF_INIT;
    bool found;
    if (without_user(path, user, &text, &found, err) < 0) return -1;
    if (!found) return 1;
    return fp_write_file_atomic(path, text.data ? text.data : "", text.len, 0600, err);
}
