/*
 * Merging the k-NN results of several index shards (ae_index_merge_results):
 * per query, a k-way merge of the shards' sorted lists. Each list is already
 * sorted by (distance, id) and ids are unique across shards once offset, so
 * repeatedly taking the smallest head gives exactly the order one index over
 * all rows would give; cost O(nq * k * n_shards), no allocation.
 */
#include <math.h>

#include "internal.h"
#include "autoenc/index.h"

/* (d, id) sorts before (e, jd) */
static int before(float d, int64_t id, float e, int64_t jd) { return d < e || (d == e && id < jd); }

ae_status ae_index_merge_results(const float *shard_distances, const int64_t *shard_ids,
                                 size_t n_shards, size_t nq, size_t shard_k,
                                 const int64_t *id_offsets, size_t k, float *distances,
                                 int64_t *ids)
{
    AE__ENTER();
    if (!shard_distances || !shard_ids || !distances || !ids || n_shards == 0 || k == 0 ||
        shard_k == 0)
        return ae__fail(NULL, AE_ERR_INVALID_ARG,
                        "NULL input or output, or zero shards, k or shard_k");
    if (n_shards > SIZE_MAX / shard_k || k > n_shards * shard_k)
        return ae__fail(NULL, AE_ERR_RANGE, "k = %zu is more than %zu shards x %zu results", k,
                        n_shards, shard_k);
    /* heads[s]: the next unused result of shard s for the current query;
     * shard counts are small (processes), so a linear scan per output is
     * cheaper than a heap */
    size_t heads_small[64], *heads = heads_small;
    ae_status st = AE_OK;
    if (n_shards > 64) {
        heads = ae__malloc(n_shards * sizeof *heads);
        if (!heads) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for %zu shards", n_shards);
    }
    for (size_t q = 0; q < nq && st == AE_OK; q++) {
        for (size_t s = 0; s < n_shards; s++) heads[s] = 0;
        for (size_t filled = 0; filled < k && st == AE_OK; filled++) {
            size_t best = n_shards;
            float bd = 0;
            int64_t bid = 0;
            for (size_t s = 0; s < n_shards && st == AE_OK; s++) {
                const float *sd = shard_distances + (s * nq + q) * shard_k;
                const int64_t *si = shard_ids + (s * nq + q) * shard_k;
                while (heads[s] < shard_k && si[heads[s]] < 0) heads[s]++;
                if (heads[s] == shard_k) continue;
                float d = sd[heads[s]];
                int64_t id = si[heads[s]] + (id_offsets ? id_offsets[s] : 0);
                if (isnan(d))
                    st = ae__fail(NULL, AE_ERR_NUMERIC, "shard %zu has a NaN distance for query %zu",
                                  s, q);
                else if (best == n_shards || before(d, id, bd, bid)) {
                    best = s;
                    bd = d;
                    bid = id;
                }
            }
            if (st != AE_OK) break;
            if (best == n_shards) {
                st = ae__fail(NULL, AE_ERR_RANGE,
                              "query %zu has %zu valid results, fewer than k = %zu", q, filled, k);
                break;
            }
            distances[q * k + filled] = bd;
            ids[q * k + filled] = bid;
            heads[best]++;
        }
    }
    if (heads != heads_small) ae__free(heads, n_shards * sizeof *heads);
    return st;
}
