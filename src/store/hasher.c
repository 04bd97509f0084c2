/* The store's hasher thread. A request receiving an upload writes each
 * piece to the upload file and hands the range to this thread, which reads
 * it back (from the page cache, so no disk I/O) and feeds the upload's
 * SHA-256. Receiving and hashing thus run on two cores: on a 2-core machine
 * SHA-256 is about a third of the receiving thread's work. Only the digest
 * check at the end of an upload, a rollback and freeing wait for it. */
#include "store/store_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define CHUNK  (256 * 1024)
#define IDLE_S 2

static void enqueue(struct fp_store *s, struct fp_upload *u)
{
    u->queued = true;
    u->hnext = NULL;
    if (s->hash_tail)
        s->hash_tail->hnext = u;
    else
        s->hash_head = u;
    s->hash_tail = u;
    pthread_cond_signal(&s->hash_work);
}

static void *hasher_main(void *arg)
{
    struct fp_store *s = arg;
    char *buf = NULL;
    pthread_mutex_lock(&s->hash_lock);
    for (;;) {
        while (!s->hash_head && !s->hash_stop) {
            if (!buf) {
                pthread_cond_wait(&s->hash_work, &s->hash_lock);
                continue;
            }
            /* idle for a while: the buffer goes back to the system (an
             * edge's budget has no room for 256 KiB that waits for the next
             * upload); mapped, not malloc'd, so that it surely does */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += IDLE_S;
            if (pthread_cond_timedwait(&s->hash_work, &s->hash_lock, &until) == ETIMEDOUT &&
                !s->hash_head) {
                munmap(buf, CHUNK);
                buf = NULL;
            }
        }
        if (!s->hash_head) break;
        if (!buf) {
            buf = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (buf == MAP_FAILED) buf = NULL;
        }
        struct fp_upload *u = s->hash_head;
        s->hash_head = u->hnext;
        if (!s->hash_head) s->hash_tail = NULL;
        u->queued = false;
        u->hashing = true;
        uint64_t from = u->hashed, to = u->offset;
        pthread_mutex_unlock(&s->hash_lock);

        bool ok = buf != NULL;
        while (ok && from < to) {
            size_t want = to - from < CHUNK ? (size_t)(to - from) : CHUNK;
            ssize_t n = pread(u->fd, buf, want, (off_t)from);
            if (n < 0 && errno == EINTR) continue;
            ok = n > 0 && fp_hasher_update(&u->hasher, buf, (size_t)n) == 0;
            if (ok) from += (uint64_t)n;
        }

        pthread_mutex_lock(&s->hash_lock);
        u->hashed = from;
        u->hashing = false;
        if (!ok)
            u->hash_failed = true;
        else if (u->hashed < u->offset && !u->queued)
            enqueue(s, u);
        pthread_cond_broadcast(&s->hash_done);
    }
    pthread_mutex_unlock(&s->hash_lock);
    if (buf) munmap(buf, CHUNK);
    return NULL;
}

void fp_hash_init(struct fp_store *s)
{
    pthread_mutex_init(&s->hash_lock, NULL);
    pthread_cond_init(&s->hash_work, NULL);
    pthread_cond_init(&s->hash_done, NULL);
}

void fp_hash_submit(struct fp_upload *u, uint64_t new_offset)
{
    struct fp_store *s = u->store;
    pthread_mutex_lock(&s->hash_lock);
    u->offset = new_offset;
    if (!s->hash_started && !s->hash_stop) {
        if (pthread_create(&s->hash_thread, NULL, hasher_main, s) == 0)
            s->hash_started = true;
        else
            u->hash_failed = true; /* no thread: hash on demand at the end */
    }
    if (s->hash_started && !u->queued && !u->hashing && !u->hash_failed) enqueue(s, u);
    pthread_mutex_unlock(&s->hash_lock);
}

void fp_hash_sync(struct fp_upload *u)
{
    struct fp_store *s = u->store;
    pthread_mutex_lock(&s->hash_lock);
    while (u->queued || u->hashing)
        pthread_cond_wait(&s->hash_done, &s->hash_lock);
    bool failed = u->hash_failed || u->hashed != u->offset;
    u->hash_failed = false;
    pthread_mutex_unlock(&s->hash_lock);
    if (failed && u->hash_valid) {
        /* rebuilt from the file by the owner when next needed */
        u->hash_valid = false;
    }
}

void fp_hash_stop(struct fp_store *s)
{
    pthread_mutex_lock(&s->hash_lock);
    s->hash_stop = true;
    bool started = s->hash_started;
    pthread_cond_broadcast(&s->hash_work);
    pthread_mutex_unlock(&s->hash_lock);
    if (started) pthread_join(s->hash_thread, NULL);
    pthread_cond_destroy(&s->hash_work);
    pthread_cond_destroy(&s->hash_done);
    pthread_mutex_destroy(&s->hash_lock);
}
