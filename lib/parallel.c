/* A small fork-join thread pool for batch-parallel training steps.
 *
 * ae__pool_run(pool, fn, ctx) runs fn(ctx, t, n) on n threads (the caller is
 * thread 0) and returns when all have finished. Workers sleep on a condition
 * variable between runs; one run costs two wake-ups, so it is meant for work
 * of tens of microseconds or more (one layer of one batch). */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <unistd.h>

#include "nn.h"

struct ae__pool {
    int n;                   /* threads including the caller */
    pthread_t *threads;      /* n - 1 workers */
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    unsigned long generation; /* bumped per run */
    int pending;             /* workers still running the current job */
    int quit;
    ae__task_fn fn;
    void *ctx;
    int started;             /* workers successfully created */
};

typedef struct worker_arg {
    ae__pool *pool;
    int index;
} worker_arg;

static void *worker_main(void *arg)
{
    worker_arg *wa = arg;
    ae__pool *p = wa->pool;
    const int index = wa->index;
    unsigned long seen = 0;
    ae__free(wa, sizeof *wa);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        p->fn(p->ctx, index, p->n);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int ae__default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > 64 ? 64 : (int)n);
}

ae_status ae__pool_create(ae__pool **out, int n)
{
    ae__pool *p;
    *out = NULL;
    if (n < 1) n = 1;
    p = ae__calloc(1, sizeof *p);
    if (!p) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for a thread pool");
    p->n = n;
    if (n > 1) {
        p->threads = ae__calloc((size_t)n - 1, sizeof *p->threads);
        if (!p->threads) {
            ae__free(p, sizeof *p);
            return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for a thread pool");
        }
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < n; i++) {
        worker_arg *wa = ae__malloc(sizeof *wa);
        if (!wa) break;
        wa->pool = p;
        wa->index = i;
        if (pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
            ae__free(wa, sizeof *wa);
            break;
        }
        p->started++;
    }
    if (p->started != n - 1) {
        ae__pool_free(p);
        return ae__fail(NULL, AE_ERR_NOMEM, "could not start %d worker threads", n - 1);
    }
    *out = p;
    return AE_OK;
}

void ae__pool_free(ae__pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    if (p->threads) ae__free(p->threads, ((size_t)p->n - 1) * sizeof *p->threads);
    ae__free(p, sizeof *p);
}

int ae__pool_threads(const ae__pool *p) { return p ? p->n : 1; }

void ae__pool_run(ae__pool *p, ae__task_fn fn, void *ctx)
{
    if (!p || p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->pending = p->n - 1;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void ae__split(size_t n, int t, int nt, size_t *lo, size_t *hi)
{
    size_t base = n / (size_t)nt, extra = n % (size_t)nt, tt = (size_t)t;
    *lo = tt * base + (tt < extra ? tt : extra);
    *hi = *lo + base + (tt < extra ? 1 : 0);
}
