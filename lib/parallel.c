/* A small fork-join thread pool for batch-parallel training and prediction.
 *
 * ae__pool_run(pool, fn, ctx) runs fn(ctx, t, n) on n threads (the caller is
 * thread 0) and returns when all have finished; inside fn, ae__pool_barrier
 * synchronises the n threads. A training step is one run with a barrier or
 * two, so hand-offs must cost microseconds: workers and waiters spin briefly
 * (with the CPU's pause hint) before they yield or sleep on a condition
 * variable, which keeps a waiting pool from burning a core between epochs. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "nn.h"

#define SPINS_BEFORE_SLEEP 20000 /* ~1 ms of pause loops, then sleep */
#define SPINS_BEFORE_YIELD 2000

struct ae__pool {
    int n;              /* threads including the caller */
    int started;        /* workers successfully created */
    pthread_t *threads; /* n - 1 workers */
    pthread_mutex_t mu;
    pthread_cond_t wake;
    ae__task_fn fn;     /* the current job, published by the generation bump */
    void *ctx;
    atomic_ulong generation; /* bumped per run */
    atomic_int pending;      /* workers still running the current job */
    atomic_int sleepers;     /* workers blocked on `wake` */
    atomic_int quit;
    atomic_int bar_count;    /* barrier arrivals */
    atomic_uint bar_gen;     /* barrier generation */
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
    for (;;) {
        int spins = 0;
        while (atomic_load(&p->generation) == seen && !atomic_load(&p->quit)) {
            if (++spins < SPINS_BEFORE_SLEEP) {
                ae__cpu_relax();
                continue;
            }
            /* sleep; the dispatcher broadcasts when it sees a sleeper */
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->generation) == seen && !atomic_load(&p->quit))
                pthread_cond_wait(&p->wake, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->quit)) break;
        seen = atomic_load(&p->generation);
        p->fn(p->ctx, index, p->n);
        atomic_fetch_sub(&p->pending, 1);
    }
    return NULL;
}

int ae__default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > AE__MAX_THREADS ? AE__MAX_THREADS : (int)n);
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
    atomic_init(&p->generation, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->quit, 0);
    atomic_init(&p->bar_count, 0);
    atomic_init(&p->bar_gen, 0);
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
    atomic_store(&p->quit, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
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
    p->fn = fn;
    p->ctx = ctx;
    atomic_store(&p->pending, p->n - 1);
    atomic_fetch_add(&p->generation, 1); /* publishes fn/ctx (seq_cst) */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->wake);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0, p->n);
    for (int spins = 0; atomic_load(&p->pending) > 0; spins++) {
        if (spins < SPINS_BEFORE_YIELD) ae__cpu_relax();
        else sched_yield();
    }
}

void ae__pool_barrier(ae__pool *p)
{
    unsigned gen;
    if (!p || p->n == 1) return;
    gen = atomic_load(&p->bar_gen);
    if (atomic_fetch_add(&p->bar_count, 1) == p->n - 1) {
        atomic_store(&p->bar_count, 0);
        atomic_fetch_add(&p->bar_gen, 1); /* releases everyone */
        return;
    }
    for (int spins = 0; atomic_load(&p->bar_gen) == gen; spins++) {
        if (spins < SPINS_BEFORE_YIELD) ae__cpu_relax();
        else sched_yield();
    }
}

void ae__split(size_t n, int t, int nt, size_t *lo, size_t *hi)
{
    size_t base = n / (size_t)nt, extra = n % (size_t)nt, tt = (size_t)t;
    *lo = tt * base + (tt < extra ? tt : extra);
    *hi = *lo + base + (tt < extra ? 1 : 0);
}
