/*
 * libautoenc_mpi (include/autoenc/mpi.h): the training reduction hooks and
 * the sharded search over MPI, on libautoenc's public API only.
 *
 * Every collective is non-blocking (MPI_Iallreduce, MPI_Ibcast,
 * MPI_Iallgather) and completed by polling MPI_Test against the context's
 * deadline, which is what lets a rank stop with an error when a peer failed
 * or died instead of blocking forever in MPI_Allreduce. Polling starts
 * with a short spin, then sleeps 20 us per round: the 2-rank gradient
 * allreduce of the simple model (204 KB) took the same time per step as a
 * blocking MPI_Allreduce on this machine (tests/bench/bench_mpi.sh).
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "autoenc/layer.h"
#include "autoenc/mpi.h"

#define MSG_CAP 256
#define SPIN_POLLS 2000  /* MPI_Test calls before the first sleep */
#define MAX_PARAM_KINDS 8 /* ae_param_kind values probed per layer */

struct ae_mpi {
    MPI_Comm comm;
    int rank, size;
    int broken;        /* a collective timed out: a request is still pending */
    double timeout_s;
    float *grad_buf;   /* gradient + status float, reused every step */
    size_t grad_cap;
    double reduce_s;
    size_t reduce_calls, reduce_bytes;
    char msg[MSG_CAP];
};

/* Records "<fn>: <text>" in the context and as the thread's last error. */
static ae_status fail(ae_mpi *ctx, const char *fn, ae_status st, const char *fmt, ...)
{
    char msg[MSG_CAP];
    int head = snprintf(msg, sizeof msg, "%s: ", fn);
    va_list ap;
    if (head < 0 || head >= (int)sizeof msg) head = 0;
    va_start(ap, fmt);
    vsnprintf(msg + head, sizeof msg - (size_t)head, fmt, ap);
    va_end(ap);
    if (ctx) memcpy(ctx->msg, msg, sizeof msg);
    return ae_set_error(st, msg);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Completes @p req before the context's deadline. On timeout the request
 * stays pending (MPI cannot cancel a collective): the context is marked
 * broken. */
static ae_status wait_for(ae_mpi *ctx, const char *fn, MPI_Request *req, const char *what)
{
    double t0 = now_s();
    long polls = 0;
    for (;;) {
        int done = 0;
        if (MPI_Test(req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            return fail(ctx, fn, AE_ERR_IO, "MPI_Test of the %s failed", what);
        if (done) return AE_OK;
        if (++polls > SPIN_POLLS) {
            struct timespec pause = {0, 20000};
            if (now_s() - t0 > ctx->timeout_s) {
                ctx->broken = 1;
                return fail(ctx, fn, AE_ERR_IO,
                            "rank %d waited %.1f s for the other ranks in the %s: a rank failed "
                            "or died; end the job (MPI_Abort)",
                            ctx->rank, ctx->timeout_s, what);
            }
            nanosleep(&pause, NULL);
        }
    }
}

static ae_status usable(ae_mpi *ctx, const char *fn)
{
    if (ctx->broken)
        return fail(ctx, fn, AE_ERR_STATE,
                    "an earlier collective of this context timed out; end the job");
    return AE_OK;
}

ae_status ae_mpi_create(ae_mpi **out, MPI_Comm comm)
{
    static const char fn[] = "ae_mpi_create";
    int inited = 0;
    ae_mpi *ctx;
    if (!out) return fail(NULL, fn, AE_ERR_INVALID_ARG, "out is NULL");
    *out = NULL;
    MPI_Initialized(&inited);
    if (!inited) return fail(NULL, fn, AE_ERR_INVALID_ARG, "MPI is not initialised (MPI_Init)");
    if (comm == MPI_COMM_NULL) return fail(NULL, fn, AE_ERR_INVALID_ARG, "comm is MPI_COMM_NULL");
    ctx = calloc(1, sizeof *ctx);
    if (!ctx) return fail(NULL, fn, AE_ERR_NOMEM, "out of memory");
    if (MPI_Comm_dup(comm, &ctx->comm) != MPI_SUCCESS) {
        free(ctx);
        return fail(NULL, fn, AE_ERR_IO, "MPI_Comm_dup failed");
    }
    MPI_Comm_rank(ctx->comm, &ctx->rank);
    MPI_Comm_size(ctx->comm, &ctx->size);
    ctx->timeout_s = 300;
    *out = ctx;
    return AE_OK;
}

void ae_mpi_free(ae_mpi *ctx)
{
    if (!ctx) return;
    /* a broken context has a pending request: freeing its communicator
     * would wait for it */
    if (!ctx->broken) MPI_Comm_free(&ctx->comm);
    free(ctx->grad_buf);
    free(ctx);
}

int ae_mpi_rank(const ae_mpi *ctx) { return ctx ? ctx->rank : -1; }
int ae_mpi_size(const ae_mpi *ctx) { return ctx ? ctx->size : 0; }
const char *ae_mpi_errmsg(const ae_mpi *ctx) { return ctx ? ctx->msg : ""; }

ae_status ae_mpi_set_timeout(ae_mpi *ctx, double seconds)
{
    static const char fn[] = "ae_mpi_set_timeout";
    if (!ctx) return fail(NULL, fn, AE_ERR_INVALID_ARG, "ctx is NULL");
    if (!(seconds >= 0.001 && seconds <= 1e6))
        return fail(ctx, fn, AE_ERR_RANGE, "timeout %g s is outside [0.001, 1e6]", seconds);
    ctx->timeout_s = seconds;
    return AE_OK;
}

ae_status ae_mpi_shard(size_t *offset, size_t *count, const ae_mpi *ctx, size_t n)
{
    static const char fn[] = "ae_mpi_shard";
    if (!offset || !count || !ctx) return fail(NULL, fn, AE_ERR_INVALID_ARG, "NULL argument");
    if (n < (size_t)ctx->size)
        return fail(NULL, fn, AE_ERR_RANGE, "%zu rows cannot be shared by %d ranks", n, ctx->size);
    *count = n / (size_t)ctx->size;
    *offset = (size_t)ctx->rank * *count;
    return AE_OK;
}

ae_status ae_mpi_agree(ae_status *all, ae_mpi *ctx, ae_status local)
{
    static const char fn[] = "ae_mpi_agree";
    /* (status != OK, rank) minimised lexicographically: an error beats OK,
     * then the lowest rank wins; its status travels in a second field */
    int mine[2], worst[2];
    MPI_Request req;
    ae_status st;
    if (!all || !ctx) return fail(ctx, fn, AE_ERR_INVALID_ARG, "NULL argument");
    if ((st = usable(ctx, fn)) != AE_OK) return st;
    mine[0] = local == AE_OK ? ctx->size : ctx->rank;
    mine[1] = (int)local;
    if (MPI_Iallreduce(mine, worst, 1, MPI_2INT, MPI_MINLOC, ctx->comm, &req) != MPI_SUCCESS)
        return fail(ctx, fn, AE_ERR_IO, "MPI_Iallreduce failed");
    if ((st = wait_for(ctx, fn, &req, "status exchange")) != AE_OK) return st;
    /* MINLOC keeps the location of the minimum: worst[1] is its status */
    *all = worst[0] == ctx->size ? AE_OK : (ae_status)worst[1];
    return AE_OK;
}

/* Walks the parameter arrays of every layer in model order: pack copies
 * them into buf, unpack sets them from buf. Returns the float count, or
 * (size_t)-1 when a set failed. */
static size_t walk_params(ae_model *m, float *buf, int unpack)
{
    size_t total = 0;
    for (size_t i = 0; i < ae_model_layer_count(m); i++) {
        const ae_layer *layer = ae_model_layer(m, i);
        if (ae_layer_param_count(layer) == 0) continue;
        for (int kind = 0; kind < MAX_PARAM_KINDS; kind++) {
            const float *data;
            size_t count;
            if (ae_layer_param(&data, &count, layer, (ae_param_kind)kind) != AE_OK) continue;
            if (buf && !unpack) memcpy(buf + total, data, count * sizeof *buf);
            if (buf && unpack &&
                ae_model_set_param(m, i, (ae_param_kind)kind, buf + total, count) != AE_OK)
                return (size_t)-1;
            total += count;
        }
    }
    return total;
}

ae_status ae_mpi_broadcast_model(ae_mpi *ctx, ae_model *model, int root)
{
    static const char fn[] = "ae_mpi_broadcast_model";
    unsigned long long counts[2], mine;
    MPI_Request req;
    float *buf;
    size_t n;
    ae_status st;
    if (!ctx || !model) return fail(ctx, fn, AE_ERR_INVALID_ARG, "NULL argument");
    if ((st = usable(ctx, fn)) != AE_OK) return st;
    if (root < 0 || root >= ctx->size)
        return fail(ctx, fn, AE_ERR_RANGE, "root %d is not a rank of %d", root, ctx->size);
    n = walk_params(model, NULL, 0);
    /* min and max of the counts in one reduction: the max of -count is -min */
    mine = (unsigned long long)n;
    {
        long long in[2] = {(long long)mine, -(long long)mine}, outv[2];
        if (MPI_Iallreduce(in, outv, 2, MPI_LONG_LONG, MPI_MAX, ctx->comm, &req) != MPI_SUCCESS)
            return fail(ctx, fn, AE_ERR_IO, "MPI_Iallreduce failed");
        if ((st = wait_for(ctx, fn, &req, "parameter-count check")) != AE_OK) return st;
        counts[0] = (unsigned long long)outv[0];
        counts[1] = (unsigned long long)(-outv[1]);
    }
    if (counts[0] != counts[1])
        return fail(ctx, fn, AE_ERR_SHAPE,
                    "the ranks' models differ: %llu to %llu parameters (this rank %zu)",
                    counts[1], counts[0], n);
    if (n == 0) return AE_OK;
    if (n > (size_t)INT32_MAX)
        return fail(ctx, fn, AE_ERR_RANGE, "%zu parameters exceed one MPI message", n);
    buf = malloc(n * sizeof *buf);
    if (!buf) return fail(ctx, fn, AE_ERR_NOMEM, "out of memory for %zu parameters", n);
    if (ctx->rank == root) walk_params(model, buf, 0);
    if (MPI_Ibcast(buf, (int)n, MPI_FLOAT, root, ctx->comm, &req) != MPI_SUCCESS) {
        free(buf);
        return fail(ctx, fn, AE_ERR_IO, "MPI_Ibcast failed");
    }
    st = wait_for(ctx, fn, &req, "weight broadcast");
    if (st == AE_OK && ctx->rank != root && walk_params(model, buf, 1) == (size_t)-1)
        st = fail(ctx, fn, AE_ERR_NUMERIC, "the root's weights were refused: %s", ae_last_error());
    free(buf);
    return st;
}

/* ---- training hooks ------------------------------------------------------ */

/* Fused gradient average: count floats plus a status float (1 on a rank
 * whose gradient is not finite), one MPI_Iallreduce per step. */
static int grad_hook(float *grads, size_t count, void *user)
{
    static const char fn[] = "ae_mpi_attach";
    ae_mpi *ctx = user;
    MPI_Request req;
    double t0 = now_s();
    float scale = 1.0f / (float)ctx->size;
    int bad = 0;
    if (ctx->broken || count + 1 > (size_t)INT32_MAX) return -1;
    if (count + 1 > ctx->grad_cap) {
        float *b = realloc(ctx->grad_buf, (count + 1) * sizeof *b);
        if (!b) {
            fail(ctx, fn, AE_ERR_NOMEM, "out of memory for the gradient buffer");
            return -1;
        }
        ctx->grad_buf = b;
        ctx->grad_cap = count + 1;
    }
    for (size_t i = 0; i < count; i++) bad |= !isfinite(grads[i]);
    memcpy(ctx->grad_buf, grads, count * sizeof *grads);
    ctx->grad_buf[count] = bad ? 1.0f : 0.0f;
    if (MPI_Iallreduce(MPI_IN_PLACE, ctx->grad_buf, (int)(count + 1), MPI_FLOAT, MPI_SUM,
                       ctx->comm, &req) != MPI_SUCCESS) {
        fail(ctx, fn, AE_ERR_IO, "MPI_Iallreduce of the gradient failed");
        return -1;
    }
    if (wait_for(ctx, fn, &req, "gradient allreduce") != AE_OK) return -1;
    ctx->reduce_s += now_s() - t0;
    ctx->reduce_calls++;
    ctx->reduce_bytes += (count + 1) * sizeof(float);
    if (ctx->grad_buf[count] != 0.0f) {
        fail(ctx, fn, AE_ERR_NUMERIC, "a rank's gradient was not finite; every rank stops");
        return -1;
    }
    for (size_t i = 0; i < count; i++) grads[i] = ctx->grad_buf[i] * scale;
    return 0;
}

/* Loss statistics (sums and counts) at epoch ends and batch-norm sums in
 * every step (synchronised batch norm), summed over the ranks. */
static int stat_hook(double *values, size_t count, void *user)
{
    static const char fn[] = "ae_mpi_attach";
    ae_mpi *ctx = user;
    MPI_Request req;
    double t0 = now_s();
    if (ctx->broken || count > (size_t)INT32_MAX) return -1;
    if (MPI_Iallreduce(MPI_IN_PLACE, values, (int)count, MPI_DOUBLE, MPI_SUM, ctx->comm, &req) !=
        MPI_SUCCESS) {
        fail(ctx, fn, AE_ERR_IO, "MPI_Iallreduce of the statistics failed");
        return -1;
    }
    if (wait_for(ctx, fn, &req, "statistics allreduce") != AE_OK) return -1;
    ctx->reduce_s += now_s() - t0;
    ctx->reduce_calls++;
    ctx->reduce_bytes += count * sizeof(double);
    return 0;
}

ae_status ae_mpi_attach(ae_mpi *ctx, ae_train_config *cfg)
{
    static const char fn[] = "ae_mpi_attach";
    ae_status st;
    if (!ctx || !cfg) return fail(ctx, fn, AE_ERR_INVALID_ARG, "NULL argument");
    if ((st = usable(ctx, fn)) != AE_OK) return st;
    st = ae_train_config_set_reduce(cfg, grad_hook, stat_hook, ctx);
    if (st != AE_OK) return fail(ctx, fn, st, "%s", ae_last_error());
    return AE_OK;
}

ae_status ae_mpi_reduce_stats(double *seconds, size_t *calls, size_t *bytes, const ae_mpi *ctx)
{
    if (!ctx) return fail(NULL, "ae_mpi_reduce_stats", AE_ERR_INVALID_ARG, "ctx is NULL");
    if (seconds) *seconds = ctx->reduce_s;
    if (calls) *calls = ctx->reduce_calls;
    if (bytes) *bytes = ctx->reduce_bytes;
    return AE_OK;
}

/* ---- sharded search -------------------------------------------------------- */

ae_status ae_mpi_index_search(ae_mpi *ctx, const ae_index *shard, int64_t id_offset,
                              const float *queries, size_t nq, size_t k, size_t ef_search,
                              float *distances, int64_t *ids)
{
    static const char fn[] = "ae_mpi_index_search";
    size_t per = nq * k, size;
    float *my_d = NULL, *all_d = NULL, *out_d = distances;
    int64_t *my_i = NULL, *all_i = NULL, *offsets = NULL;
    ae_status st, local, agreed;
    MPI_Request req;
    if (!ctx || !shard || !queries || !ids || k == 0)
        return fail(ctx, fn, AE_ERR_INVALID_ARG, "NULL argument or k = 0");
    if ((st = usable(ctx, fn)) != AE_OK) return st;
    if (nq == 0) return AE_OK;
    size = (size_t)ctx->size;
    if (per > (size_t)INT32_MAX / 2 || nq > SIZE_MAX / k)
        return fail(ctx, fn, AE_ERR_RANGE, "%zu queries x k = %zu exceed one MPI message", nq, k);
    my_d = malloc(per * sizeof *my_d);
    my_i = malloc(per * sizeof *my_i);
    all_d = malloc(size * per * sizeof *all_d);
    all_i = malloc(size * per * sizeof *all_i);
    offsets = malloc(size * sizeof *offsets);
    if (!distances) out_d = malloc(per * sizeof *out_d);
    local = (my_d && my_i && all_d && all_i && offsets && out_d) ? AE_OK : AE_ERR_NOMEM;
    if (local == AE_OK) local = ae_index_search(shard, queries, nq, k, ef_search, my_d, my_i);
    /* every rank goes on only if every shard answered */
    st = ae_mpi_agree(&agreed, ctx, local);
    if (st != AE_OK) goto done;
    if (agreed != AE_OK) {
        st = fail(ctx, fn, agreed, "a shard's search failed%s%s", local != AE_OK ? ": " : "",
                  local != AE_OK ? ae_last_error() : " on another rank");
        goto done;
    }
    if (MPI_Iallgather(my_d, (int)per, MPI_FLOAT, all_d, (int)per, MPI_FLOAT, ctx->comm, &req) !=
        MPI_SUCCESS) {
        st = fail(ctx, fn, AE_ERR_IO, "MPI_Iallgather failed");
        goto done;
    }
    if ((st = wait_for(ctx, fn, &req, "result gather")) != AE_OK) goto done;
    if (MPI_Iallgather(my_i, (int)per, MPI_INT64_T, all_i, (int)per, MPI_INT64_T, ctx->comm,
                       &req) != MPI_SUCCESS) {
        st = fail(ctx, fn, AE_ERR_IO, "MPI_Iallgather failed");
        goto done;
    }
    if ((st = wait_for(ctx, fn, &req, "result gather")) != AE_OK) goto done;
    if (MPI_Iallgather(&id_offset, 1, MPI_INT64_T, offsets, 1, MPI_INT64_T, ctx->comm, &req) !=
        MPI_SUCCESS) {
        st = fail(ctx, fn, AE_ERR_IO, "MPI_Iallgather failed");
        goto done;
    }
    if ((st = wait_for(ctx, fn, &req, "offset gather")) != AE_OK) goto done;
    st = ae_index_merge_results(all_d, all_i, size, nq, k, offsets, k, out_d, ids);
    if (st != AE_OK) st = fail(ctx, fn, st, "%s", ae_last_error());
done:
    if (out_d != distances) free(out_d);
    free(my_d);
    free(my_i);
    free(all_d);
    free(all_i);
    free(offsets);
    return st;
}
