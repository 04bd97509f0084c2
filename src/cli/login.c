/* fogport login: check credentials against a cloud and save them as the
 * operator's context (cli/context.h). */
#include <getopt.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/context.h"
#include "core/buf.h"
#include "core/cleanup.h"
#include "core/http_client.h"

const char fp_help_login[] =
    "usage: fogport login URL --user NAME [--password-stdin] [--ca FILE]\n\n"
    "Log in to a cloud (checking the credentials against it) and save URL, CA and\n"
    "credential as the client context: $FOGPORT_CONFIG, or\n"
    "~/.config/fogport/config.json (mode 0600). Operator commands then need no\n"
    "--registry, --cacert or --user.\n\n"
    "example:\n"
    "  echo \"$PW\" | fogport login https://cloud:5000 --user admin --password-stdin \\\n"
    "      --ca ca.crt\n";

int fp_cmd_login(int argc, char **argv)
{
    static const struct option opts[] = {
        {"user", required_argument, NULL, 'u'},
        {"ca", required_argument, NULL, 'C'},
        {"password-stdin", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *user = NULL, *ca = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "u:C:sh", opts, NULL)) != -1) {
        switch (c) {
        case 'u':
            user = optarg;
            break;
        case 'C':
            ca = optarg;
            break;
        case 's':
            break; /* the password is always read from stdin or the terminal */
        case 'h':
            fp_cli_help("login");
            return 0;
        default:
            return fp_cli_usage_error("login", "unknown option");
        }
    }
    if (optind >= argc || !user)
        return fp_cli_usage_error("login", "expected the cloud's URL and --user NAME");
    char url[512];
    snprintf(url, sizeof url, "%s", argv[optind]);
    size_t ul = strlen(url);
    while (ul && url[ul - 1] == '/')
        url[--ul] = '\0';
    char password[512];
    if (isatty(STDIN_FILENO)) {
        char *p = getpass("password: ");
        snprintf(password, sizeof password, "%s", p ? p : "");
        if (p) OPENSSL_cleanse(p, strlen(p));
    } else if (!fgets(password, sizeof password, stdin)) {
        password[0] = '\0';
    }
    password[strcspn(password, "\r\n")] = '\0';
    char abs_ca[PATH_MAX] = "";
    if (ca && !realpath(ca, abs_ca)) {
        fprintf(stderr, "fogport: %s: no such file\n", ca);
        return 1;
    }
    /* check: the catalog needs a valid login (Basic or via the token service) */
    cleanup_buf fp_buf userpwd = FP_BUF_INIT, probe = FP_BUF_INIT;
    fp_buf_printf(&userpwd, "%s:%s", user, password);
    fp_buf_printf(&probe, "%s/v2/", url);
    fp_http_opts o = {.userpwd = userpwd.data, .cacert = abs_ca[0] ? abs_ca : NULL};
    fp_http_response resp;
    fp_error err;
    int rc = fp_http_registry_get(probe.data, &o, &resp, &err);
    OPENSSL_cleanse(userpwd.data, userpwd.len);
    if (rc < 0) {
        OPENSSL_cleanse(password, sizeof password);
        return fp_cli_fail(&err);
    }
    long status = resp.status;
    fp_http_response_free(&resp);
    if (status != 200) {
        OPENSSL_cleanse(password, sizeof password);
        fprintf(stderr, "fogport: login to %s failed (HTTP %ld)\n", url, status);
        return 1;
    }
    char path[1024];
    rc = fp_context_save(url, abs_ca, user, password, path, &err);
    OPENSSL_cleanse(password, sizeof password);
    if (rc < 0) return fp_cli_fail(&err);
    printf("logged in to %s as %s (context %s)\n", url, user, path);
    return 0;
}
