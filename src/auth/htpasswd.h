/* Basic authentication against an htpasswd file (bcrypt hashes, as
 * `htpasswd -B` writes them). bcrypt is deliberately slow (~50 ms at cost
 * 10), so a verified credential is remembered for a few minutes, keyed by a
 * salted SHA-256 of the header, never the password itself. The file is
 * re-read when it changes. The token service (cloud-issued JWTs) builds on
 * this in the identity layer. */
#ifndef FP_AUTH_HTPASSWD_H
#define FP_AUTH_HTPASSWD_H

#include <stdbool.h>
#include <stddef.h>

#include "core/error.h"

typedef struct fp_auth fp_auth;

int fp_auth_open(fp_auth **out, const char *htpasswd_path, fp_error *err);
/* The same from an htpasswd file's text (a fog's copy of the cloud's users,
 * src/auth/authdata.h); never re-read. */
int fp_auth_open_text(fp_auth **out, const char *text, fp_error *err);
void fp_auth_free(fp_auth *a);
/* Verify an Authorization header value ("Basic base64(user:pass)").
 * On success copies the user name into user (64 bytes). */
bool fp_auth_check(fp_auth *a, const char *authorization, char user[64]);
/* Split an Authorization: Basic header into name and password. */
bool fp_basic_decode(const char *authorization, char name[64], char *pass, size_t passlen);
/* Verify a user name and password. */
bool fp_auth_verify(fp_auth *a, const char *name, const char *password, char user[64]);

/* Editing the file (fogport user ...): atomic rewrite, mode 0600, bcrypt
 * ($2b$, cost 10). set adds or replaces; must_exist refuses a new user. */
int fp_htpasswd_set(const char *path, const char *user, const char *password, bool must_exist,
                    fp_error *err);
/* Returns 1 if the user was not there. */
int fp_htpasswd_delete(const char *path, const char *user, fp_error *err);
bool fp_htpasswd_user_valid(const char *user);

#endif
