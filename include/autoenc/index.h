/*
 * libautoenc: nearest-neighbour index over fixed-size float codes.
 *
 * One opaque handle, ae_index, with the backend chosen at creation:
 *  - AE_INDEX_BRUTE     exact; batches of queries go through one GEMM per
 *                       block of queries x block of data.
 *  - AE_INDEX_BALLTREE  exact; the ball tree of scikit-learn's BallTree.
 *  - AE_INDEX_HNSW      approximate; hierarchical navigable small-world graph.
 *
 * Life cycle (zstd / SQLite style, no public struct layouts):
 *
 *     ae_index *idx;
 *     ae_index_create(&idx, AE_INDEX_HNSW, AE_INDEX_L2, 128);
 *     ae_index_set_int(idx, AE_INDEX_HNSW_M, 16);             // optional
 *     ae_index_build(idx, codes, n, NULL, labels);             // once
 *     ae_index_search(idx, queries, nq, 10, 0, dist, ids);     // any number of times
 *     ae_index_save(idx, "codes.aeidx");
 *     ae_index_free(idx);
 *
 * Results: for every query the k nearest indexed points, nearest first, ties
 * (equal distances) broken by the smaller id. The exact backends return
 * exactly the neighbours a double-precision brute-force scan would.
 *
 * Threading: a mutable handle (ae_index *) is used by one thread at a time.
 * Every call taking a const ae_index * (search, save, accessors) is safe to
 * make concurrently from any number of threads on the same built index: it
 * keeps its scratch memory per call and never writes to the index. This is
 * why query-time settings (k, HNSW's ef_search) are per-call arguments, and
 * why failures of const calls are reported through the thread-local
 * ae_last_error() only, not through ae_index_errmsg().
 *
 * Memory: an index copies everything it needs at build time, so it outlives
 * the caller's arrays, and a saved index file stands alone.
 */
#ifndef AUTOENC_INDEX_H
#define AUTOENC_INDEX_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Opaque nearest-neighbour index. Create with ae_index_create() or ae_index_load(). */
typedef struct ae_index ae_index;

/** Index backends. Values are pinned (they are stored in index files). */
typedef enum ae_index_backend {
    AE_INDEX_BRUTE = 1,    /**< exact brute force through BLAS (GEMM) */
    AE_INDEX_BALLTREE = 2, /**< exact ball tree (scikit-learn's algorithm) */
    AE_INDEX_HNSW = 3      /**< approximate HNSW graph (Malkov & Yashunin) */
} ae_index_backend;

/** Distance metrics. Values are pinned (they are stored in index files). */
typedef enum ae_index_metric {
    /** Euclidean. Searches report the L2 distance sqrt(sum (q - x)^2), as
     *  scikit-learn's kneighbors() does (squared L2 is used internally). */
    AE_INDEX_L2 = 1,
    /** Cosine distance 1 - cos(q, x), in [0, 2], as scikit-learn's "cosine".
     *  Vectors are normalised on entry; zero vectors are refused
     *  (AE_ERR_NUMERIC) since they have no direction. */
    AE_INDEX_COSINE = 2
} ae_index_metric;

/**
 * Build parameters, set with ae_index_set_int() between create and build.
 * Keys are pinned and append-only. Every key has one value type
 * (ae_index_param_type; all of today's keys are AE_VALUE_INT). Each key
 * applies to the backends named; setting it on another backend fails with
 * AE_ERR_INVALID_ARG. Query the accepted range with
 * ae_index_param_int_bounds() and the current value with ae_index_get_int().
 */
typedef enum ae_index_param {
    /** Ball tree: a node is split while it would keep at least this many
     *  points per leaf (leaves hold leaf_size..2*leaf_size points, as in
     *  scikit-learn). Default 40, range [1, 1048576]. */
    AE_INDEX_LEAF_SIZE = 1,
    /** HNSW: links per node on the upper layers (2*M on layer 0).
     *  Default 16, range [2, 256]. */
    AE_INDEX_HNSW_M = 2,
    /** HNSW: candidate-list size while building. Default 200, range [1, 65536]. */
    AE_INDEX_HNSW_EF_CONSTRUCTION = 3,
    /** HNSW: the ef_search used when a search passes ef_search = 0. Fixed
     *  at build time and saved with the index. Default 64, range [1, 65536]. */
    AE_INDEX_HNSW_EF_SEARCH = 4,
    /** HNSW: seed of the random level assignment; the same data, parameters
     *  and seed give the same graph. Default 42, range [0, INT64_MAX]. */
    AE_INDEX_SEED = 5
} ae_index_param;

/**
 * Create an empty index for codes of @p dim floats.
 * @param out     receives the new index (NULL on failure)
 * @param backend one of ae_index_backend
 * @param metric  one of ae_index_metric
 * @param dim     code dimension, 1..1048576
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL out, unknown backend or metric,
 *         dim 0), AE_ERR_RANGE (dim too large) or AE_ERR_NOMEM.
 */
AE_API ae_status ae_index_create(ae_index **out, ae_index_backend backend,
                                 ae_index_metric metric, size_t dim);

/** Free an index and everything it owns. Accepts NULL. */
AE_API void ae_index_free(ae_index *idx);

/**
 * Set a build parameter. Allowed only before ae_index_build() (afterwards
 * AE_ERR_STATE: a built index never changes).
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL, unknown key, key not used by this
 *         backend), AE_ERR_RANGE (value outside ae_index_param_int_bounds()) or
 *         AE_ERR_STATE.
 */
AE_API ae_status ae_index_set_int(ae_index *idx, ae_index_param key, int64_t value);

/**
 * Current value of integer parameter @p key into @p value (the default until
 * set; for a loaded index, the value it was built with).
 * @return AE_OK, or AE_ERR_INVALID_ARG (NULL pointer, unknown key, key not
 *         used by this backend).
 */
AE_API ae_status ae_index_get_int(int64_t *value, const ae_index *idx, ae_index_param key);

/** Value type of @p key (AE_ERR_INVALID_ARG for an unknown key). */
AE_API ae_status ae_index_param_type(ae_value_type *type, ae_index_param key);

/**
 * Inclusive range of values accepted for integer key @p key (either output
 * may be NULL).
 * @return AE_OK or AE_ERR_INVALID_ARG (unknown key).
 */
AE_API ae_status ae_index_param_int_bounds(int64_t *lo, int64_t *hi, ae_index_param key);

/** Static name of a key, as spelled in this header ("AE_INDEX_HNSW_M"); NULL if unknown. */
AE_API const char *ae_index_param_name(ae_index_param key);

/**
 * Build the index from @p n codes, copying everything it needs. Allowed once
 * per index (AE_ERR_STATE afterwards); a failed build leaves the index empty
 * and may be retried.
 * @param x      n x dim floats, row-major; all finite
 * @param n      number of codes, 1..4294967294
 * @param ids    n caller ids, all distinct, or NULL for 0..n-1
 * @param labels n caller labels (e.g. classes), or NULL for none
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL idx or x, n = 0, duplicate ids),
 *         AE_ERR_RANGE (n too large), AE_ERR_NUMERIC (NaN/inf in x, squared
 *         norms beyond float range, zero vector under cosine), AE_ERR_STATE
 *         (already built) or AE_ERR_NOMEM.
 */
AE_API ae_status ae_index_build(ae_index *idx, const float *x, size_t n, const int64_t *ids,
                                const int32_t *labels);

/**
 * Find the @p k nearest indexed codes of each of @p nq queries.
 *
 * Safe to call concurrently on the same index from several threads. Each call
 * allocates its scratch once (a few small blocks; the brute-force backend's
 * scratch for a batch is about 2 MB) and frees it before returning.
 *
 * @param queries    nq x dim floats, row-major; all finite
 * @param nq         number of queries; 0 is a no-op returning AE_OK
 * @param k          neighbours per query, 1..ae_index_count()
 * @param ef_search  HNSW beam width (raised to k if smaller); 0 uses the
 *                   index's AE_INDEX_HNSW_EF_SEARCH. Ignored by the exact
 *                   backends. Larger is slower and more accurate.
 * @param distances  nq x k floats receiving the distances (ascending per
 *                   query), or NULL if not wanted
 * @param ids        nq x k ids receiving the neighbours' ids
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL idx, queries or ids, k = 0),
 *         AE_ERR_RANGE (k > count, ef_search > 65536), AE_ERR_STATE (index not
 *         built), AE_ERR_NUMERIC (NaN/inf in queries, zero query under
 *         cosine) or AE_ERR_NOMEM. On error the output buffers are undefined.
 */
AE_API ae_status ae_index_search(const ae_index *idx, const float *queries, size_t nq, size_t k,
                                 size_t ef_search, float *distances, int64_t *ids);

/**
 * Merges the search results of @p n_shards indexes that each hold a part of
 * one collection (a sharded index: shards on several processes or machines,
 * see autoenc/mpi.h) into the @p k nearest per query, as one index over all
 * rows would return them: nearest first, equal distances broken by the
 * smaller global id. Shard s's results are @p nq x @p shard_k distances and
 * ids at shard_distances/shard_ids + s * nq * shard_k (row-major per
 * query, as ae_index_search writes them); its ids become global by adding
 * @p id_offsets[s] (NULL: all 0, the shards already use global ids).
 * Exact shards give exact merged results when shard_k >= k. Ids below 0
 * (unfilled slots) are skipped. Keeps no state; safe from any thread.
 * @param distances nq x k floats receiving the merged distances
 * @param ids       nq x k ids receiving the merged global ids
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL inputs or outputs, n_shards or k
 *         zero), AE_ERR_RANGE (k > n_shards * shard_k, or fewer than k
 *         valid results for a query) or AE_ERR_NUMERIC (a NaN distance).
 */
AE_API ae_status ae_index_merge_results(const float *shard_distances, const int64_t *shard_ids,
                                        size_t n_shards, size_t nq, size_t shard_k,
                                        const int64_t *id_offsets, size_t k, float *distances,
                                        int64_t *ids);

/** Number of indexed codes (0 before build or for NULL). */
AE_API size_t ae_index_count(const ae_index *idx);

/** Code dimension given at creation (0 for NULL). */
AE_API size_t ae_index_dim(const ae_index *idx);

/**
 * Check that the index holds codes of @p expected_dim floats, e.g. that a
 * loaded index fits an encoder's code size.
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL) or AE_ERR_SHAPE (with a message
 *         naming both sizes).
 */
AE_API ae_status ae_index_check_dim(const ae_index *idx, size_t expected_dim);

/** The backend chosen at creation (0 for NULL). */
AE_API ae_index_backend ae_index_backend_of(const ae_index *idx);

/** The metric chosen at creation (0 for NULL). */
AE_API ae_index_metric ae_index_metric_of(const ae_index *idx);

/** Non-zero when the index was built with labels. */
AE_API int ae_index_has_labels(const ae_index *idx);

/**
 * Label of the indexed code with id @p id, into @p label.
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL), AE_ERR_STATE (not built, or
 *         built without labels) or AE_ERR_RANGE (no code has this id).
 */
AE_API ae_status ae_index_label(int32_t *label, const ae_index *idx, int64_t id);

/**
 * Id of the code given at row @p row of the build input (0-based), into @p id.
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL), AE_ERR_STATE (not built) or
 *         AE_ERR_RANGE (row >= count).
 */
AE_API ae_status ae_index_id_at(int64_t *id, const ae_index *idx, size_t row);

/**
 * Label of the code given at row @p row of the build input (0-based), into @p label.
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL), AE_ERR_STATE (not built or no
 *         labels) or AE_ERR_RANGE (row >= count).
 */
AE_API ae_status ae_index_label_at(int32_t *label, const ae_index *idx, size_t row);

/** Bytes of memory the index holds (0 for NULL). */
AE_API size_t ae_index_memory_bytes(const ae_index *idx);

/**
 * Message of the last failed call that modified @p idx (ae_index_set_int,
 * ae_index_build); "" if none. Failures of const calls are reported through
 * ae_last_error() only. Valid until the next call on @p idx. Never NULL.
 */
AE_API const char *ae_index_errmsg(const ae_index *idx);

/**
 * Save a built index to @p path atomically: written to a temporary file
 * beside it, fsynced, then renamed over @p path, so a failure leaves any old
 * file untouched. The format (docs/formats-index.md) is versioned and
 * CRC-32 checksummed and holds everything needed to search. A new file gets
 * the mode fopen would give it (0666 less the umask); a replaced file keeps
 * its permission bits. A read-only target (no write bit, or a file the
 * caller may not write) or one that is not a regular file is not replaced:
 * AE_ERR_IO, and it stays as it was (docs/reliability.md).
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL), AE_ERR_STATE (not built) or
 *         AE_ERR_IO.
 */
AE_API ae_status ae_index_save(const ae_index *idx, const char *path);

/**
 * Load an index saved by ae_index_save(). Every size is checked against the
 * file length before anything is allocated for it.
 * @param out receives the index (NULL on failure)
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL), AE_ERR_IO (cannot read),
 *         AE_ERR_FORMAT (not an index file, truncated or inconsistent),
 *         AE_ERR_VERSION (written by a newer format version),
 *         AE_ERR_CHECKSUM (contents do not match the checksum) or AE_ERR_NOMEM.
 */
AE_API ae_status ae_index_load(ae_index **out, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_INDEX_H */
