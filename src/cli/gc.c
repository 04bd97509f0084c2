/* fogport gc and fogport fsck: maintenance on a node's data directory,
 * safe to run while `fogport serve` is serving it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "store/store.h"

const char fp_help_gc[] =
    "usage: fogport gc [--config FILE | --data DIR] [--grace DURATION] [--dry-run]\n\n"
    "Remove untagged manifests (keeping index children and referrers of kept\n"
    "manifests) and blobs no kept manifest references, while the registry keeps\n"
    "serving. Content younger than the grace period ([storage] gc_grace, default\n"
    "1h) is kept, so uploads in progress are never collected.\n\n"
    "example:\n"
    "  fogport gc --data /var/lib/fogport --grace 10m\n";

int fp_cmd_gc(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'}, {"data", required_argument, NULL, 'd'},
        {"grace", required_argument, NULL, 'g'},  {"dry-run", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *data = NULL, *grace = NULL;
    bool dry_run = false;
    int c;
    while ((c = getopt_long(argc, argv, "c:d:g:nh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'g':
            grace = optarg;
            break;
        case 'n':
            dry_run = true;
            break;
        case 'h':
            fp_cli_help("gc");
            return 0;
        default:
            return fp_cli_usage_error("gc", "unknown option");
        }
    }
    fp_config cfg;
    if (fp_cli_load_config(&cfg, config, data) < 0) return 1;
    fp_error err;
    if (grace && fp_config_set(&cfg, "storage", "gc_grace", grace, &err) < 0)
        return fp_cli_fail(&err);
    fp_store *s;
    struct fp_store_options so = {.upload_expiry_s = cfg.upload_expiry_s};
    if (fp_store_open(&s, cfg.data_dir, &so, &err) < 0) return fp_cli_fail(&err);
    struct fp_gc_stats st;
    int rc = fp_store_gc(s, cfg.gc_grace_s, dry_run, &st, &err);
    fp_store_close(s);
    if (rc < 0) return fp_cli_fail(&err);
    printf("%smanifests_removed=%llu blob_links_removed=%llu blobs_removed=%llu "
           "bytes_freed=%llu uploads_purged=%llu orphan_files_removed=%llu\n",
           dry_run ? "dry-run " : "", (unsigned long long)st.manifests_removed,
           (unsigned long long)st.blob_links_removed, (unsigned long long)st.blobs_removed,
           (unsigned long long)st.bytes_freed, (unsigned long long)st.uploads_purged,
           (unsigned long long)st.orphan_files_removed);
    return 0;
}

const char fp_help_fsck[] =
    "usage: fogport fsck [--config FILE | --data DIR]\n\n"
    "Re-hash every stored blob and manifest and check every reference. Prints one\n"
    "line per problem (KIND DIGEST DETAIL) and a summary; exits 1 if any problem\n"
    "was found. Read-only; safe while the registry is serving.\n\n"
    "example:\n"
    "  fogport fsck --config /etc/fogport/fogport.conf\n";

static void print_problem(void *ctx, const char *kind, const char *digest, const char *detail)
{
    (void)ctx;
    printf("%s %s %s\n", kind, digest, detail ? detail : "");
}

int fp_cmd_fsck(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"data", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *data = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "c:d:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'd':
            data = optarg;
            break;
        case 'h':
            fp_cli_help("fsck");
            return 0;
        default:
            return fp_cli_usage_error("fsck", "unknown option");
        }
    }
    fp_config cfg;
    if (fp_cli_load_config(&cfg, config, data) < 0) return 1;
    fp_error err;
    fp_store *s;
    struct fp_store_options so = {.upload_expiry_s = cfg.upload_expiry_s};
    if (fp_store_open(&s, cfg.data_dir, &so, &err) < 0) return fp_cli_fail(&err);
    struct fp_fsck_stats st;
    int rc = fp_store_fsck(s, print_problem, NULL, &st, &err);
    fp_store_close(s);
    if (rc < 0) return fp_cli_fail(&err);
    printf("blobs=%llu bytes=%llu manifests=%llu problems=%llu\n",
           (unsigned long long)st.blobs_checked, (unsigned long long)st.bytes_checked,
           (unsigned long long)st.manifests_checked, (unsigned long long)st.problems);
    return st.problems ? 1 : 0;
}
