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
 *     ae_index_add(idx, more, m, more_ids, more_labels);       // any time after
 *     ae_index_remove(idx, gone_ids, g);                       // any time after
 *     ae_index_save(idx, "codes.aeidx");
 *     ae_index_free(idx);
 *     ae_index_map(&idx, "codes.aeidx", AE_INDEX_CHECK_BOUNDS); // read-only, in place
 *
 * Results: for every query the k nearest indexed points, nearest first, ties
 * (equal distances) broken by the smaller id. The exact backends return
 * exactly the neighbours a double-precision brute-force scan would.
 *
 * Threading: every index carries a reader-writer lock (docs/threading.md).
 * Calls taking a const ae_index * (search, filtered search, save, accessors)
 * read: any number run concurrently on the same index; they keep their
 * scratch memory per call. ae_index_add, ae_index_remove, ae_index_compact,
 * ae_index_build and ae_index_set_int write: each waits for the searches in
 * flight and runs alone, and a search sees either none or all of a change.
 * A waiting writer holds back new readers, so it is never starved.
 * ae_index_free must not overlap any other call on the index. Query-time
 * settings (k, HNSW's ef_search) are per-call arguments, and failures of const
 * calls are reported through the thread-local ae_last_error() only, not
 * through ae_index_errmsg() (which, shared by the handle, names the last
 * failed modifying call). A search filter must not call a modifying function
 * on the index it filters. A mapped index (ae_index_map()) is read-only:
 * only the reading calls apply, with the same rules, and searches on it run
 * concurrently like on any other index (they only read the mapping).
 *
 * Memory: an index copies everything it needs at build time, so it outlives
 * the caller's arrays, and a saved index file stands alone. A mapped index
 * is the exception: it reads its codes and graph from the file or buffer it
 * was opened from (ae_index_map(), ae_index_map_memory()).
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
    AE_INDEX_COSINE = 2,
    /** Maximum inner product. Searches rank by descending q.x and report
     *  the distance -q.x (so smaller is better, ascending as for the other
     *  metrics; it may be negative). Internally every code x is stored as
     *  (x, sqrt(M^2 - |x|^2)) with M the largest code norm, which turns the
     *  ranking into an L2 ranking every backend serves (Bachrach et al.
     *  2014). The exact backends are exact for these stored codes: the
     *  extra coordinate is rounded to float, so two codes whose inner
     *  products with a query differ by less than about 1e-7 M^2 may be
     *  swapped. Adding a code longer than M recomputes the extra coordinate
     *  of every code (and rebuilds the brute-force norms or the ball tree). */
    AE_INDEX_INNER_PRODUCT = 3
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
     *  and seed give the same graph (with AE_INDEX_THREADS 1). Default 42,
     *  range [0, INT64_MAX]. */
    AE_INDEX_SEED = 5,
    /** HNSW: threads that insert codes in ae_index_build(), ae_index_add()
     *  and ae_index_compact() (the calling thread and threads of the
     *  library's own, started and joined by the call). With 1 the codes
     *  are inserted in order and the graph is reproducible; with more, the
     *  order of insertion depends on timing, so the graph, and so the exact
     *  results of a search, may differ from run to run, while recall stays
     *  that of a one-thread build. The levels are drawn as with one thread.
     *  A setting of the handle, not of the graph: unlike the other keys it
     *  may be set after the build, and it is not saved in a file (a loaded
     *  index starts with 1). Default 1, range [1, 64]. */
    AE_INDEX_THREADS = 6
} ae_index_param;

/**
 * A search filter: return non-zero to allow the indexed code with id @p id
 * in the results. Called from the searching thread, any number of times per
 * query, possibly several times for one id; it must not call into the
 * index it filters (it runs under the index's read lock).
 */
typedef int (*ae_index_filter_fn)(int64_t id, void *user);

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
 * AE_ERR_STATE: the parameters of a built index never change), except
 * AE_INDEX_THREADS, a setting of the handle that may be changed at any time.
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
 * and may be retried. HNSW: after the inserts, every code that no walk of
 * the bottom layer from the entry point reaches (the neighbour heuristic can
 * prune a code from every list that held it, more often on several threads)
 * is linked again from the neighbours a search for it finds, so a search at
 * a wide enough ef can return every code; ae_index_add() does the same when
 * it adds at least 1/256 of the graph's codes (the pass reads every link, so
 * smaller adds leave it to a later large add or ae_index_compact()).
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
 * Add @p n codes to an index, with ids chosen by the caller. On an index not
 * yet built this is ae_index_build() with these ids. Afterwards:
 *  - brute force appends the rows (cost O(n d));
 *  - the ball tree keeps new rows in an overflow block searched exactly by a
 *    scan beside the tree, and rebuilds the whole tree (cost of a build over
 *    every row) when the overflow exceeds a quarter of the tree's rows (at
 *    least 256 rows), so an add costs O(d log n) amortised;
 *  - HNSW inserts each code into the graph as a build does
 *    (AE_INDEX_HNSW_EF_CONSTRUCTION, M); its level is drawn from a generator
 *    seeded with AE_INDEX_SEED and the row number, so the same sequence of
 *    calls gives the same graph (with AE_INDEX_THREADS 1; more threads
 *    insert the codes at once).
 * The new rows follow the existing ones (see ae_index_id_at()). The call is atomic: on failure the index answers as
 * before. A full search of the index sees either none or all of the rows.
 * @param x      n x dim floats, row-major; all finite
 * @param n      number of codes, >= 1
 * @param ids    n caller ids, distinct from each other and from every id in
 *               the index (a removed id may be used again); required
 * @param labels n labels if the index has labels (or is empty and should
 *               have them), else NULL
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL idx, x or ids, n = 0, a duplicate
 *         id, labels given to an index without them or missing for one with
 *         them), AE_ERR_RANGE (too many rows), AE_ERR_NUMERIC (NaN/inf,
 *         squared norm beyond float range, zero vector under cosine) or
 *         AE_ERR_NOMEM.
 */
AE_API ae_status ae_index_add(ae_index *idx, const float *x, size_t n, const int64_t *ids,
                              const int32_t *labels);

/**
 * Remove the codes with the given ids. They never appear in results again;
 * every backend only marks them (O(1) per id), searches skip them (HNSW
 * still walks through them, so the graph stays connected), and
 * ae_index_compact() reclaims their space. ae_index_count() drops at once.
 * The call is atomic: if any id is unknown (or repeated) nothing is removed.
 * @param ids n ids of codes in the index
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL, n = 0, an id given twice),
 *         AE_ERR_RANGE (no code has one of the ids; the message names it),
 *         AE_ERR_STATE (not built, or removing every code: an index keeps
 *         at least one) or AE_ERR_NOMEM.
 */
AE_API ae_status ae_index_remove(ae_index *idx, const int64_t *ids, size_t n);

/**
 * Reclaim the space of removed codes and fold the ball tree's overflow into
 * its tree: the index is rebuilt from its live rows with its parameters (the
 * cost of ae_index_build() over ae_index_count() rows; HNSW gets a new graph,
 * so results may differ slightly from before). Rows are renumbered: the live
 * rows keep their relative order. A no-op when there is nothing to reclaim.
 * Atomic: on failure the index is unchanged.
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL), AE_ERR_STATE (not built) or
 *         AE_ERR_NOMEM.
 */
AE_API ae_status ae_index_compact(ae_index *idx);

/**
 * Find the @p k nearest indexed codes of each of @p nq queries.
 *
 * Safe to call concurrently on the same index from several threads, also
 * beside ae_index_add() and ae_index_remove() (see "Threading"). Each call
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

/**
 * ae_index_search() restricted to the codes whose id @p keep allows.
 *
 * Every query gets the k nearest allowed codes when at least k exist; the
 * exact backends return exactly those (the same answer as a double-precision
 * brute force over the allowed codes). HNSW keeps expanding its beam until it
 * holds ef_search allowed codes (or has seen every code it can reach), so a
 * filter keeping a fraction p of the codes costs roughly 1/p times an
 * unfiltered search; if the graph walk ends with fewer than k allowed codes,
 * the query falls back to an exact scan of the allowed codes. When fewer than
 * k codes are allowed, the remaining slots of the query's results hold id -1
 * and distance +infinity.
 *
 * @param keep       the filter; NULL allows every code (then the call is
 *                   ae_index_search())
 * @param user       passed to @p keep
 * Other parameters, the return values and the threading rules are those of
 * ae_index_search().
 * @param queries    nq x dim floats
 * @param nq         number of queries
 * @param k          neighbours per query, 1..ae_index_count()
 * @param ef_search  HNSW beam width (0: the index's default)
 * @param distances  nq x k floats, or NULL
 * @param ids        nq x k ids
 * @return as ae_index_search()
 */
AE_API ae_status ae_index_search_filtered(const ae_index *idx, const float *queries, size_t nq,
                                          size_t k, size_t ef_search, ae_index_filter_fn keep,
                                          void *user, float *distances, int64_t *ids);

/** Number of indexed codes, removed ones not counted (0 before build or for NULL). */
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
 * Rows added by ae_index_add() follow the build's rows. A removed code keeps
 * its row (AE_ERR_RANGE for it) until ae_index_compact() renumbers the rows,
 * so while codes are removed rows run past ae_index_count().
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL), AE_ERR_STATE (not built) or
 *         AE_ERR_RANGE (no such row, or the row was removed).
 */
AE_API ae_status ae_index_id_at(int64_t *id, const ae_index *idx, size_t row);

/**
 * Label of the code given at row @p row of the build input (0-based), into
 * @p label. Rows are numbered as for ae_index_id_at().
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL), AE_ERR_STATE (not built or no
 *         labels) or AE_ERR_RANGE (no such row, or the row was removed).
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

/**
 * A sink for ae_index_save_to(): takes the next @p n bytes of the file.
 * @return 0 when they were stored, non-zero to stop the save (AE_ERR_IO)
 */
typedef int (*ae_index_write_fn)(const void *data, size_t n, void *user);

/**
 * Write a built index, in the format of ae_index_save() (the same bytes), to
 * a callback, for programs that keep indexes in their own storage. The bytes
 * arrive in order, in pieces of any size; after a non-zero return no more
 * come. Nothing is atomic here: a failed save leaves whatever the callback
 * stored. A reader like ae_index_save() (see "Threading").
 * @param write called with each piece and @p user
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL), AE_ERR_STATE (not built) or
 *         AE_ERR_IO (the callback returned non-zero).
 */
AE_API ae_status ae_index_save_to(const ae_index *idx, ae_index_write_fn write, void *user);

/**
 * Load an index from the @p len bytes of a file saved by ae_index_save() or
 * ae_index_save_to(), held by the caller (any alignment; copied, so the
 * bytes may go once this returns). Checked exactly as ae_index_load()
 * checks a file; messages name the file "<memory>".
 * @param out receives the index (NULL on failure)
 * @return as ae_index_load(), without AE_ERR_IO.
 */
AE_API ae_status ae_index_load_memory(ae_index **out, const void *data, size_t len);

/** How much ae_index_map() checks before it returns. Values are pinned. */
typedef enum ae_index_check {
    /** Everything ae_index_load() checks, in its order: the CRC-32 over the
     *  whole file, then the structure and every value (finite codes,
     *  distinct ids, the ball tree's nodes, every HNSW link). Reads the
     *  whole file once; the pages it read are released again, so they do
     *  not stay in the process's resident set. */
    AE_INDEX_CHECK_FULL = 1,
    /** Structure and bounds only, no checksum: the header, parameters and
     *  section sizes, the ids (distinct), labels, removed flags, the ball
     *  tree's permutation, the HNSW levels, entry point and upper-layer
     *  links; O(n) bytes, not the codes or the layer-0 links, so it costs
     *  far less than the file's size. Searches check every layer-0 link
     *  before they follow it. A corrupt file (damaged codes, nodes or links)
     *  then gives wrong results, never a read outside the file or an
     *  unbounded loop; use it for files this program or a trusted one
     *  wrote. Files of format versions 1 to 3 get the full check. */
    AE_INDEX_CHECK_BOUNDS = 2
} ae_index_check;

/**
 * Open an index file saved by ae_index_save() read-only through mmap(),
 * without copying its codes and graph into the heap: they stay in the page
 * cache, shared with other processes mapping the same file, and are read in
 * as searches touch them. Searches give exactly the results of the same
 * file loaded with ae_index_load().
 *
 * What stays in the file: the codes (except under the inner-product metric,
 * where each code gains its extra coordinate and is copied), the HNSW link
 * lists and the ball tree's centroids and radii. What is copied: ids,
 * labels and removed flags (at most 13 bytes per code) with the id table,
 * the HNSW levels and list offsets (9 bytes per code), the ball tree's
 * permutation, the brute-force row norms (4 bytes per code, computed by a
 * pass over the codes). ae_index_memory_bytes() counts the copies only.
 * Files of format versions 1 to 3, whose sections are not aligned, are read
 * into the heap as ae_index_load() reads them.
 *
 * The index is read-only: ae_index_add(), ae_index_remove(),
 * ae_index_compact(), ae_index_build() and ae_index_set_int() fail with
 * AE_ERR_STATE (ae_index_load() gives a changeable index). Searches and the
 * other const calls follow the threading rules above. ae_index_free()
 * unmaps the file. The file must not be truncated or written in place
 * while it is mapped (a truncated mapping raises SIGBUS, as with any
 * mmap); ae_index_save() over it is safe, since it replaces the file by a
 * rename and the mapping keeps the old one.
 *
 * @param out   receives the index (NULL on failure)
 * @param path  the file
 * @param check AE_INDEX_CHECK_FULL or AE_INDEX_CHECK_BOUNDS
 * @return AE_OK, AE_ERR_INVALID_ARG (NULL, unknown check), AE_ERR_IO (cannot
 *         open or map; not a regular file), AE_ERR_FORMAT (not an index
 *         file, truncated or inconsistent), AE_ERR_VERSION (a newer format),
 *         AE_ERR_CHECKSUM (full check only) or AE_ERR_NOMEM.
 */
AE_API ae_status ae_index_map(ae_index **out, const char *path, ae_index_check check);

/**
 * ae_index_map() over the @p len bytes of an index file held by the caller,
 * without copying them: the index keeps pointers into @p data, which must
 * stay valid and unchanged until ae_index_free(). @p data must be aligned to
 * 8 bytes (64 is best for the search kernels). Messages name the file
 * "<memory>". Other rules as ae_index_map(); ae_index_free() leaves the
 * bytes alone.
 * @param out   receives the index (NULL on failure)
 * @param data  the bytes of a file saved by ae_index_save() or
 *              ae_index_save_to()
 * @param len   their number
 * @param check AE_INDEX_CHECK_FULL or AE_INDEX_CHECK_BOUNDS
 * @return as ae_index_map() without AE_ERR_IO; AE_ERR_INVALID_ARG also for
 *         a misaligned @p data.
 */
AE_API ae_status ae_index_map_memory(ae_index **out, const void *data, size_t len,
                                     ae_index_check check);

/** Non-zero when @p idx is read-only, viewing a file or buffer it was
 *  opened from with ae_index_map() or ae_index_map_memory() (0 for NULL,
 *  and for a version 1 to 3 file, which is read into the heap). */
AE_API int ae_index_is_mapped(const ae_index *idx);

#ifdef __cplusplus
}
#endif
#endif /* AUTOENC_INDEX_H */
