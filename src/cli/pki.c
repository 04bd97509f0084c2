/* fogport ca init and fogport cert issue: the deployment CA and node
 * certificates. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/pki.h"
#include "cli/cli.h"
#include "core/config.h"

const char fp_help_ca[] =
    "usage: fogport ca init --dir DIR [--name NAME]\n\n"
    "Create the deployment's CA (DIR/ca.key, DIR/ca.crt) and the token signing key\n"
    "(DIR/token.key, DIR/token.pub). Keep DIR on the cloud; give ca.crt to every\n"
    "client and node, token.pub to every registry ([auth] token_keys).\n\n"
    "example:\n"
    "  fogport ca init --dir /var/lib/fogport/ca --name \"Example deployment CA\"\n";

int fp_cmd_ca(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"name", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *name = "fogport deployment CA";
    int c;
    while ((c = getopt_long(argc, argv, "d:n:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'h':
            fp_cli_help("ca");
            return 0;
        default:
            return fp_cli_usage_error("ca", "unknown option");
        }
    }
    if (optind >= argc || strcmp(argv[optind], "init") != 0 || !dir)
        return fp_cli_usage_error("ca", "expected init and --dir DIR");
    fp_error err;
    if (fp_ca_init(dir, name, &err) < 0) return fp_cli_fail(&err);
    printf("%s/ca.crt\n", dir);
    return 0;
}

const char fp_help_cert[] =
    "usage: fogport cert issue --ca DIR --name CN [--dns NAME]... [--ip ADDR]...\n"
    "                          --out PREFIX [--days N]\n\n"
    "Issue PREFIX.key and PREFIX.crt (with the CA certificate appended) for a node,\n"
    "valid for its DNS names and IP addresses, as TLS server and client.\n\n"
    "example:\n"
    "  fogport cert issue --ca /etc/fogport/ca --name fog-1 --dns fog-1.local \\\n"
    "      --ip 10.0.0.11 --out /etc/fogport/tls\n";

int fp_cmd_cert(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, 'a'},  {"name", required_argument, NULL, 'n'},
        {"dns", required_argument, NULL, 'd'}, {"ip", required_argument, NULL, 'i'},
        {"out", required_argument, NULL, 'o'}, {"days", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    const char *ca = NULL, *name = NULL, *out = NULL;
    const char *dns[32], *ips[32];
    size_t nd = 0, ni = 0;
    unsigned days = 365;
    int c;
    while ((c = getopt_long(argc, argv, "a:n:d:i:o:D:h", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            ca = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'd':
            if (nd == 32) return fp_cli_usage_error("cert", "too many --dns");
            dns[nd++] = optarg;
            break;
        case 'i':
            if (ni == 32) return fp_cli_usage_error("cert", "too many --ip");
            ips[ni++] = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'D':
            days = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'h':
            fp_cli_help("cert");
            return 0;
        default:
            return fp_cli_usage_error("cert", "unknown option");
        }
    }
    if (optind >= argc || strcmp(argv[optind], "issue") != 0 || !ca || !name || !out)
        return fp_cli_usage_error("cert", "expected issue, --ca, --name and --out");
    fp_error err;
    if (fp_cert_issue(ca, name, dns, nd, ips, ni, days, out, &err) < 0) return fp_cli_fail(&err);
    printf("%s.crt\n", out);
    return 0;
}
