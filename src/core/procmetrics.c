#include "core/procmetrics.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/metrics.h"

/* Seconds since the epoch at boot (/proc/stat btime). */
static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "re");
    if (!f) return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %lf", &bt) == 1) break;
    fclose(f);
    return bt;
}

static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') n++;
    closedir(d);
    return n - 1; /* the directory stream's own */
}

void fp_procmetrics_render(fp_buf *b)
{
    char stat[1024] = "";
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n = f ? fread(stat, 1, sizeof stat - 1, f) : 0;
    if (f) fclose(f);
    stat[n] = '\0';
    /* the fields after the command name, which may hold spaces and ')' */
    const char *p = strrchr(stat, ')');
    unsigned long utime = 0, stime = 0, vsize = 0;
    unsigned long long start = 0;
    long rss = 0;
    bool ok = p && sscanf(p + 2,
                          "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d "
                          "%*d %llu %lu %ld",
                          &utime, &stime, &start, &vsize, &rss) == 5;
    double tick = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (ok && tick > 0) {
        fp_metrics_family(b, "process_cpu_seconds_total", "counter",
                          "Total user and system CPU time spent in seconds.");
        fp_metrics_sample(b, "process_cpu_seconds_total", NULL, 0, (double)(utime + stime) / tick);
        fp_metrics_family(b, "process_start_time_seconds", "gauge",
                          "Start time of the process since unix epoch in seconds.");
        fp_metrics_sample(b, "process_start_time_seconds", NULL, 0,
                          boot_time() + (double)start / tick);
        fp_metrics_family(b, "process_virtual_memory_bytes", "gauge",
                          "Virtual memory size in bytes.");
        fp_metrics_sample_u64(b, "process_virtual_memory_bytes", NULL, 0, vsize);
        fp_metrics_family(b, "process_resident_memory_bytes", "gauge",
                          "Resident memory size in bytes.");
        fp_metrics_sample_u64(b, "process_resident_memory_bytes", NULL, 0,
                              (uint64_t)(rss > 0 ? rss : 0) * (uint64_t)page);
    }
    long fds = open_fds();
    if (fds >= 0) {
        fp_metrics_family(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        fp_metrics_sample_u64(b, "process_open_fds", NULL, 0, (uint64_t)fds);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        fp_metrics_family(b, "process_max_fds", "gauge",
                          "Maximum number of open file descriptors.");
        fp_metrics_sample_u64(b, "process_max_fds", NULL, 0, (uint64_t)rl.rlim_cur);
    }
}
