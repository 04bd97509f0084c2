/* fogport key generate: a token-signing key pair (EC P-256) for the token
 * service: PREFIX.key (private, mode 0600) and PREFIX.pub (give this to
 * every registry as [auth] token_keys). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "auth/jwt.h"
#include "cli/cli.h"

const char fp_help_key[] =
    "usage: fogport key generate --out PREFIX\n\n"
    "Create PREFIX.key (private, 0600) and PREFIX.pub and print the key id. The\n"
    "token service signs with PREFIX.key ([auth] token_key); registries verify with\n"
    "PREFIX.pub ([auth] token_keys, which may list several keys during rotation).\n\n"
    "example:\n"
    "  fogport key generate --out /etc/fogport/token\n";

int fp_cmd_key(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 'h':
            fp_cli_help("key");
            return 0;
        default:
            return fp_cli_usage_error("key", "unknown option");
        }
    }
    if (optind >= argc || strcmp(argv[optind], "generate") != 0 || !out)
        return fp_cli_usage_error("key", "expected generate and --out PREFIX");
    fp_error err;
    fp_key *k;
    if (fp_key_generate(&k, &err) < 0) return fp_cli_fail(&err);
    char priv[4096], pub[4096];
    snprintf(priv, sizeof priv, "%s.key", out);
    snprintf(pub, sizeof pub, "%s.pub", out);
    int rc = fp_key_save_private(k, priv, &err) < 0 || fp_key_save_public(k, pub, &err) < 0;
    if (!rc) printf("%s\n", fp_key_id(k));
    fp_key_free(k);
    return rc ? fp_cli_fail(&err) : 0;
}
