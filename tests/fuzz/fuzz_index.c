/* libFuzzer harness: the index-file loader (ae_index_load). An accepted
 * index answers a query (k = 1 and k = min(count, 5)), plain and filtered,
 * its accessors work, it survives a save/load round trip with the same
 * answers, and it takes an add, a removal and a compaction (the paths that
 * rely on the loaded removed flags, ids and the ball tree's overflow).
 *
 * The mapped path (ae_index_map) too: with the full check, the file gets
 * exactly ae_index_load's status and the same answers; with the bounds
 * check (no CRC, no pass over codes and layer-0 links), the raw input as a
 * buffer (ae_index_map_memory), whatever it holds: accepted or not, a search
 * of it must stay within the bytes (ASan) and fail only with the statuses a
 * search may return. */
#include "fuzz_common.h"

#define MAX_SCAN ((size_t)1 << 22) /* count * dim above which queries are skipped */

static int keep_odd(int64_t id, void *user)
{
    (void)user;
    return (id & 1) != 0;
}

/* The bounds-checked view of the raw input; its search must be memory-safe. */
static void fuzz_bounds(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1); /* malloc: 8-byte aligned */
    ae_index *m = NULL;
    ae_status st;
    if (!copy) abort();
    if (size) memcpy(copy, data, size);
    st = ae_index_map_memory(&m, copy, size, AE_INDEX_CHECK_BOUNDS);
    fuzz_check_load_status(st);
    if (st == AE_OK) {
        size_t n = ae_index_count(m), d = ae_index_dim(m), k = n < 5 ? n : 5;
        if (n == 0 || d == 0) abort();
        if (n * d <= MAX_SCAN) {
            float *q = malloc(d * sizeof(float)), dist[5];
            int64_t ids[5];
            if (!q) abort();
            for (size_t i = 0; i < d; i++) q[i] = 0.25f + (float)(i % 5) * 0.5f;
            st = ae_index_search(m, q, 1, k, 0, dist, ids);
            if (st != AE_OK && st != AE_ERR_NOMEM && st != AE_ERR_NUMERIC) abort();
            st = ae_index_search_filtered(m, q, 1, k, 9, keep_odd, NULL, dist, ids);
            if (st != AE_OK && st != AE_ERR_NOMEM && st != AE_ERR_NUMERIC) abort();
            if (ae_index_add(m, q, 1, &(int64_t){-7}, NULL) != AE_ERR_STATE) abort();
            free(q);
        }
    } else if (m) {
        abort();
    }
    ae_index_free(m);
    free(copy);
}


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *fixed = fuzz_fix_crc(data, size);
    const char *path = fuzz_write_input("index", fixed, size);
    ae_index *idx = NULL, *idx2 = NULL, *mapped = NULL;
    size_t n, d, k;
    ae_status st, stm;
    free(fixed);
    fuzz_bounds(data, size);
    st = ae_index_load(&idx, path);
    fuzz_check_load_status(st);
    stm = ae_index_map(&mapped, path, AE_INDEX_CHECK_FULL);
    if (stm != st && stm != AE_ERR_NOMEM && st != AE_ERR_NOMEM) abort();
    if (st != AE_OK) {
        if (idx) abort();
        ae_index_free(mapped);
        return 0;
    }
    n = ae_index_count(idx);
    d = ae_index_dim(idx);
    if (n == 0 || d == 0) abort();
    if (n * d <= MAX_SCAN) {
        float *q = malloc(d * sizeof(float)), dist[5], dist2[5];
        int64_t ids[5], ids2[5], id;
        int32_t label;
        if (!q) abort();
        for (size_t i = 0; i < d; i++) q[i] = 0.25f + (float)(i % 5) * 0.5f;
        k = n < 5 ? n : 5;
        st = ae_index_search(idx, q, 1, k, 0, dist, ids);
        if (st != AE_OK && st != AE_ERR_NOMEM) abort();
        if (st == AE_OK) {
            for (size_t i = 1; i < k; i++)
                if (dist[i] < dist[i - 1]) abort(); /* ascending */
            st = ae_index_search(idx, q, 1, 1, 7, dist, ids);
            if (st != AE_OK && st != AE_ERR_NOMEM) abort();
        }
        st = ae_index_search_filtered(idx, q, 1, k, 0, keep_odd, NULL, dist, ids);
        if (st != AE_OK && st != AE_ERR_NOMEM) abort();
        for (size_t i = 0; st == AE_OK && i < k; i++)
            if (ids[i] != -1 && !keep_odd(ids[i], NULL)) abort();
        { /* the first row not removed (row 0 may be: tests/data/index-v3) */
            size_t r = 0;
            while (ae_index_id_at(&id, idx, r) == AE_ERR_RANGE) r++;
            if (ae_index_id_at(&id, idx, r) != AE_OK) abort();
            if (ae_index_has_labels(idx)) {
                if (ae_index_label(&label, idx, id) != AE_OK) abort();
                if (ae_index_label_at(&label, idx, r) != AE_OK) abort();
            }
        }
        if (mapped) { /* the full check's mapping answers as the loaded index */
            float dm[5];
            int64_t im[5];
            if (ae_index_search(idx, q, 1, k, 0, dist, ids) == AE_OK &&
                ae_index_search(mapped, q, 1, k, 0, dm, im) == AE_OK &&
                (memcmp(ids, im, k * sizeof ids[0]) != 0 || memcmp(dist, dm, k * sizeof dm[0])))
                abort();
        }
        /* round trip */
        if (ae_index_save(idx, g_fuzz_out) != AE_OK) abort();
        if (ae_index_load(&idx2, g_fuzz_out) != AE_OK) abort();
        if (ae_index_count(idx2) != n) abort();
        if (ae_index_search(idx, q, 1, k, 0, dist, ids) == AE_OK &&
            ae_index_search(idx2, q, 1, k, 0, dist2, ids2) == AE_OK &&
            memcmp(ids, ids2, k * sizeof ids[0]) != 0)
            abort();
        ae_index_free(idx2);
        { /* a new code under an id not in the index, then it goes again */
            int64_t nid = INT64_MIN;
            int32_t lab = 0;
            st = ae_index_add(idx, q, 1, &nid, ae_index_has_labels(idx) ? &lab : NULL);
            if (st == AE_OK) {
                if (ae_index_count(idx) != n + 1) abort();
                if (ae_index_remove(idx, &nid, 1) != AE_OK) abort();
            } else if (st != AE_ERR_NOMEM && st != AE_ERR_INVALID_ARG && st != AE_ERR_NUMERIC) {
                abort(); /* INVALID_ARG: the file held INT64_MIN; NUMERIC: norms */
            }
            st = ae_index_compact(idx);
            if (st != AE_OK && st != AE_ERR_NOMEM) abort();
            if (ae_index_count(idx) != n) abort();
        }
        free(q);
    }
    ae_index_free(mapped);
    ae_index_free(idx);
    return 0;
}
