/* fogport user add|passwd|del|list: the users of a registry's htpasswd file. */
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/htpasswd.h"
#include "cli/cli.h"
#include "core/cleanup.h"
#include "core/fs.h"

const char fp_help_user[] =
    "usage: fogport user add|passwd NAME [--file HTPASSWD | --config FILE]\n"
    "                  [--password-stdin]\n"
    "       fogport user del NAME [--file HTPASSWD | --config FILE]\n"
    "       fogport user list [--file HTPASSWD | --config FILE]\n\n"
    "Manage the users who may log in ([auth] htpasswd; bcrypt hashes). The password\n"
    "is read from standard input (one line), or asked for on a terminal.\n\n"
    "examples:\n"
    "  echo 'a long passphrase' | fogport user add operator --file /etc/fogport/htpasswd"
    " --password-stdin\n"
    "  fogport user passwd operator --config /etc/fogport/fogport.conf\n"
    "  fogport user del operator --file /etc/fogport/htpasswd\n"
    "  fogport user list --config /etc/fogport/fogport.conf\n";

static int read_password(char *out, size_t outlen, bool from_stdin)
{
    if (!from_stdin && isatty(STDIN_FILENO)) {
        char *p = getpass("password: ");
        if (!p) return -1;
        snprintf(out, outlen, "%s", p);
        OPENSSL_cleanse(p, strlen(p));
        return 0;
    }
    if (!fgets(out, (int)outlen, stdin)) return -1;
    out[strcspn(out, "\r\n")] = '\0';
    return 0;
}

int fp_cmd_user(int argc, char **argv)
{
    static const struct option opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"config", required_argument, NULL, 'c'},
        {"password-stdin", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL, *config = NULL;
    bool from_stdin = false;
    int c;
    while ((c = getopt_long(argc, argv, "f:c:sh", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            file = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 's':
            from_stdin = true;
            break;
        case 'h':
            fp_cli_help("user");
            return 0;
        default:
            return fp_cli_usage_error("user", "unknown option");
        }
    }
    if (optind >= argc)
        return fp_cli_usage_error("user", "missing action (add, passwd, del, list)");
    const char *action = argv[optind];
    const char *name = optind + 1 < argc ? argv[optind + 1] : NULL;
    fp_config cfg;
    if (!file) {
        if (fp_cli_load_config(&cfg, config, NULL) < 0) return 1;
        if (!cfg.htpasswd[0])
            return fp_cli_usage_error("user", "no htpasswd file (--file, or [auth] htpasswd)");
        file = cfg.htpasswd;
    }
    fp_error err;
    if (!strcmp(action, "list")) {
        cleanup_free char *text = NULL;
        if (fp_read_file(file, 16 << 20, &text, NULL, &err) < 0) return fp_cli_fail(&err);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
            char *colon = strchr(line, ':');
            if (colon) printf("%.*s\n", (int)(colon - line), line);
        }
        return 0;
    }
    if (!name) return fp_cli_usage_error("user", "missing user name");
    if (!strcmp(action, "del")) {
        int rc = fp_htpasswd_delete(file, name, &err);
        if (rc < 0) return fp_cli_fail(&err);
        if (rc == 1) {
            fprintf(stderr, "fogport: no user '%s'\n", name);
            return 1;
        }
        return 0;
    }
    if (strcmp(action, "add") != 0 && strcmp(action, "passwd") != 0)
        return fp_cli_usage_error("user", "unknown action");
    char password[1024];
    if (read_password(password, sizeof password, from_stdin) < 0) {
        fprintf(stderr, "fogport: no password given\n");
        return 1;
    }
    int rc = fp_htpasswd_set(file, name, password, !strcmp(action, "passwd"), &err);
    OPENSSL_cleanse(password, sizeof password);
    return rc < 0 ? fp_cli_fail(&err) : 0;
}
