/* Hedged requests: the same request to the next holder when the one asked
 * is silent. Each attempt runs on its own thread. The first is started at
 * once; the next when no attempt has claimed the race for
 * [federation] hedge_after, or at once when every attempt so far ended
 * without claiming it. The first attempt to claim wins: no more are
 * started, and the others notice (their HTTP transfers poll
 * fp_fed_race_lost) and end on their own, after the race has returned.
 * A holder whose silence started a hedge and that then lost is skipped for
 * a while, like one that failed.
 *
 * A holder asked as a parent (the parent itself, or a replication seed)
 * is never hedged against: it may be fetching the bytes itself. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "federation/fed_internal.h"

struct fed_runner {
    struct fed_race *race;
    unsigned slot;
    size_t index; /* of src in the caller's list */
    struct fp_source src;
    int rc;
    bool ended;
    bool hedged; /* its silence started the next attempt */
};

struct fed_race {
    fp_federation *f;
    pthread_mutex_t lock;
    pthread_cond_t moved; /* an attempt claimed or ended (CLOCK_MONOTONIC) */
    unsigned refs;        /* the caller's and each running attempt's */
    int winner;           /* slot, or -1 */
    unsigned running;
    struct fed_race_spec spec;
    unsigned nrunners;
    struct fed_runner runners[FED_RACE_MAX];
};

static void race_unref(fed_race *r)
{
    pthread_mutex_lock(&r->lock);
    bool last = --r->refs == 0;
    pthread_mutex_unlock(&r->lock);
    if (!last) return;
    if (r->spec.ctx_unref) r->spec.ctx_unref(r->spec.ctx);
    pthread_cond_destroy(&r->moved);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

bool fp_fed_race_claim(fed_race *r, unsigned slot)
{
    pthread_mutex_lock(&r->lock);
    if (r->winner < 0) {
        r->winner = (int)slot;
        pthread_cond_broadcast(&r->moved);
    }
    bool won = r->winner == (int)slot;
    pthread_mutex_unlock(&r->lock);
    return won;
}

bool fp_fed_race_lost(fed_race *r, unsigned slot)
{
    pthread_mutex_lock(&r->lock);
    bool lost = r->winner >= 0 && r->winner != (int)slot;
    pthread_mutex_unlock(&r->lock);
    return lost;
}

static int runner_cancel(void *arg)
{
    struct fed_runner *rn = arg;
    return fp_fed_race_lost(rn->race, rn->slot);
}

void fp_fed_race_opts(fed_race *r, unsigned slot, fp_http_opts *opts)
{
    opts->cancel = runner_cancel;
    opts->cancel_ctx = &r->runners[slot];
}

static void *runner_main(void *arg)
{
    struct fed_runner *rn = arg;
    fed_race *r = rn->race;
    fp_federation *f = r->f;
    int rc = r->spec.attempt(r, rn->slot, &rn->src, r->spec.ctx);
    pthread_mutex_lock(&r->lock);
    rn->rc = rc;
    rn->ended = true;
    r->running--;
    pthread_cond_broadcast(&r->moved);
    pthread_mutex_unlock(&r->lock);
    race_unref(r);
    pthread_mutex_lock(&f->lock);
    if (--f->threads == 0) pthread_cond_broadcast(&f->threads_done);
    pthread_mutex_unlock(&f->lock);
    return NULL;
}

/* Start an attempt at src on its own thread. Under r->lock. */
static bool launch(fed_race *r, const struct fp_source *src, size_t index)
{
    if (r->nrunners == FED_RACE_MAX) return false;
    struct fed_runner *rn = &r->runners[r->nrunners];
    memset(rn, 0, sizeof *rn);
    rn->race = r;
    rn->slot = r->nrunners;
    rn->index = index;
    rn->src = *src;
    fp_federation *f = r->f;
    pthread_mutex_lock(&f->lock);
    f->threads++;
    pthread_mutex_unlock(&f->lock);
    r->refs++;
    r->running++;
    r->nrunners++;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t th;
    int rc = pthread_create(&th, &attr, runner_main, rn);
    pthread_attr_destroy(&attr);
    if (rc == 0) return true;
    /* no thread: the attempt never ran */
    r->refs--;
    r->running--;
    r->nrunners--;
    pthread_mutex_lock(&f->lock);
    if (--f->threads == 0) pthread_cond_broadcast(&f->threads_done);
    pthread_mutex_unlock(&f->lock);
    fp_warn("event=attempt_not_started source=%s errno=%d", src->id, rc);
    return false;
}

static struct timespec deadline_after(unsigned ms)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) {
        t.tv_sec++;
        t.tv_nsec -= 1000000000L;
    }
    return t;
}

int fp_fed_race_run(fp_federation *f, const struct fp_source *src, size_t n, size_t *next,
                    const struct fed_race_spec *spec, int *rc)
{
    fed_race *r = calloc(1, sizeof *r);
    if (!r) {
        fp_warn("event=race_not_started error=\"out of memory\"");
        *next = n;
        return -1;
    }
    r->f = f;
    r->refs = 1;
    r->winner = -1;
    r->spec = *spec;
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->moved, &ca);
    pthread_condattr_destroy(&ca);
    if (spec->ctx_ref) spec->ctx_ref(spec->ctx);
    unsigned hedge_ms = spec->hedge ? f->cfg->fed_hedge_after_ms : 0;
    struct timespec hedge_at = {0};

    pthread_mutex_lock(&r->lock);
    for (;;) {
        if (r->winner >= 0) {
            if (r->runners[r->winner].ended) break;
            pthread_cond_wait(&r->moved, &r->lock);
            continue;
        }
        if (r->running == 0) {
            if (*next >= n) break;
            if (launch(r, &src[*next], *next)) hedge_at = deadline_after(hedge_ms);
            ++*next;
            continue;
        }
        /* Someone is being asked and has not answered. Ask the next holder
         * too once it has been silent for hedge_after, unless it was asked
         * as a parent. */
        const struct fed_runner *last = &r->runners[r->nrunners - 1];
        if (!hedge_ms || *next >= n || last->src.parent) {
            pthread_cond_wait(&r->moved, &r->lock);
            continue;
        }
        if (pthread_cond_timedwait(&r->moved, &r->lock, &hedge_at) != ETIMEDOUT) continue;
        if (r->winner >= 0 || last->ended) continue;
        fp_info("event=hedged source=%s next=%s after_ms=%u", last->src.id, src[*next].id,
                hedge_ms);
        r->runners[r->nrunners - 1].hedged = true;
        if (launch(r, &src[*next], *next)) hedge_at = deadline_after(hedge_ms);
        ++*next;
    }
    int won = -1;
    struct fp_source slow[FED_RACE_MAX];
    size_t nslow = 0;
    if (r->winner >= 0) {
        *rc = r->runners[r->winner].rc;
        won = (int)r->runners[r->winner].index;
        /* who was hedged against and lost is skipped for a while, at once:
         * the next request must not wait for it again */
        for (unsigned i = 0; i < r->nrunners; i++)
            if (r->runners[i].hedged && (int)i != r->winner) slow[nslow++] = r->runners[i].src;
    }
    pthread_mutex_unlock(&r->lock);
    race_unref(r);
    for (size_t i = 0; i < nslow; i++) {
        fp_info("event=peer_slow source=%s", slow[i].id);
        fp_fed_source_failed(f, slow[i].id);
    }
    return won;
}
