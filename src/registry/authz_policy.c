/* The cloud's policy file, watched: an operator edits it (or the users
 * file) and the running cloud follows, as it does for htpasswd (which
 * src/auth/htpasswd.c re-reads itself). Edits are grants, so each change
 * is also reported (on_change: the audit log records it). Requests hold a
 * reference to the policy they decide with, so a reload never frees one in
 * use. */
#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "core/log.h"
#include "registry/authz.h"

static struct fp_file_sig file_sig(const char *path)
{
    struct stat st;
    if (!path[0] || stat(path, &st) < 0) return (struct fp_file_sig){0};
    return (struct fp_file_sig){.ino = st.st_ino,
                                .size = (unsigned long long)st.st_size,
                                .mtime_ns = st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec};
}

static bool sig_equal(struct fp_file_sig a, struct fp_file_sig b)
{
    return a.ino == b.ino && a.size == b.size && a.mtime_ns == b.mtime_ns;
}

void fp_authz_policy_seen(fp_authz *a)
{
    a->policy_sig = file_sig(a->cfg->policy);
    a->users_sig = file_sig(a->cfg->htpasswd);
}

static long long now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* One request a second looks; the others go on with what is loaded. */
static void check_files(fp_authz *a)
{
    long long now = now_s(), last = __atomic_load_n(&a->policy_checked, __ATOMIC_RELAXED);
    if (now == last || !__atomic_compare_exchange_n(&a->policy_checked, &last, now, false,
                                                    __ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
        return;
    struct fp_file_sig ps = file_sig(a->cfg->policy), us = file_sig(a->cfg->htpasswd);
    pthread_mutex_lock(&a->cache_lock);
    bool policy_changed = a->cfg->policy[0] && !sig_equal(ps, a->policy_sig);
    bool users_changed = a->cfg->htpasswd[0] && !sig_equal(us, a->users_sig);
    /* remembered even when the new text is bad: one error per edit */
    a->policy_sig = ps;
    a->users_sig = us;
    pthread_mutex_unlock(&a->cache_lock);
    if (!policy_changed && !users_changed) return;
    if (policy_changed) {
        fp_policy *p = NULL;
        fp_error err;
        char q[600];
        if (fp_policy_load(a->cfg->policy, &p, &err) < 0) {
            fp_errorf("event=policy_reload_failed error=%s kept=\"the last good policy\"",
                      fp_log_quote(err.msg, q, sizeof q));
            return;
        }
        pthread_mutex_lock(&a->cache_lock);
        fp_policy *old = a->policy;
        a->policy = p;
        pthread_mutex_unlock(&a->cache_lock);
        fp_policy_unref(old);
        fp_info("event=policy_reloaded path=%s", fp_log_quote(a->cfg->policy, q, sizeof q));
    }
    if (a->on_change) a->on_change(a->on_change_ctx);
}

fp_policy *fp_authz_policy(fp_authz *a)
{
    check_files(a);
    pthread_mutex_lock(&a->cache_lock);
    fp_policy *p = fp_policy_ref(a->policy);
    pthread_mutex_unlock(&a->cache_lock);
    return p;
}
