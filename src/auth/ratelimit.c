#include "auth/ratelimit.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS 1024

struct slot {
    char addr[48];
    time_t window_start;
    unsigned failures;
};

struct fp_ratelimit {
    pthread_mutex_t lock;
    unsigned max, window;
    struct slot slots[SLOTS];
};

fp_ratelimit *fp_ratelimit_new(unsigned max, unsigned window_s)
{
    fp_ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl) return NULL;
    pthread_mutex_init(&rl->lock, NULL);
    rl->max = max ? max : 5;
    rl->window = window_s ? window_s : 60;
    return rl;
}

void fp_ratelimit_free(fp_ratelimit *rl)
{
    if (!rl) return;
    pthread_mutex_destroy(&rl->lock);
    free(rl);
}

static struct slot *find(fp_ratelimit *rl, const char *addr, bool create)
{
    unsigned h = 2166136261u;
    for (const char *p = addr; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    struct slot *s = &rl->slots[h % SLOTS];
    if (strcmp(s->addr, addr) == 0) return s;
    if (!create) return NULL;
    snprintf(s->addr, sizeof s->addr, "%s", addr);
    s->failures = 0;
    s->window_start = time(NULL);
    return s;
}

unsigned fp_ratelimit_blocked(fp_ratelimit *rl, const char *addr)
{
    unsigned wait = 0;
    time_t now = time(NULL);
    pthread_mutex_lock(&rl->lock);
    struct slot *s = find(rl, addr, false);
    if (s && s->failures >= rl->max && now < s->window_start + (time_t)rl->window)
        wait = (unsigned)(s->window_start + (time_t)rl->window - now);
    pthread_mutex_unlock(&rl->lock);
    return wait;
}

void fp_ratelimit_failure(fp_ratelimit *rl, const char *addr)
{
    time_t now = time(NULL);
    pthread_mutex_lock(&rl->lock);
    struct slot *s = find(rl, addr, true);
    if (now >= s->window_start + (time_t)rl->window) {
        s->window_start = now;
        s->failures = 0;
    }
    s->failures++;
    pthread_mutex_unlock(&rl->lock);
}
