/* The index file format (docs/formats-index.md) seen from outside the library:
 *
 *  - version-1 files written by libautoenc 0.1.0 (tests/data/index-v1/, one
 *    per backend) still load, answer exactly like a fresh build of the same
 *    data, survive every truncation and flipped byte with the documented
 *    status, and every allocation failure while loading;
 *  - version-2 and version-3 files written by the format-version-2 and -3
 *    libraries (tests/data/index-v2/, index-v3/) load (also through
 *    ae_index_map, which reads them into the heap) and answer like a fresh
 *    build;
 *  - version-4 files are parsed by a small reader below that knows only the
 *    offsets the document gives (it shares no code with the library, not even
 *    the CRC), and every field is checked against the index's accessors, so
 *    the document cannot drift from the code;
 *  - the parameter list is extensible: a missing key takes its default, an
 *    unknown key is AE_ERR_VERSION, a misplaced one AE_ERR_FORMAT.
 *
 * The fixtures come from a deterministic tiny data set (tiny_data below):
 *   test_index_format --write-fixtures DIR
 * writes them with the library the program is linked with, named
 * <name>_v4.aeidx (the committed files of index-v1 were written by the
 * format-version-1 library, commit 9ec214a, those of index-v2 by the
 * format-version-2 library, commit 930281d, those of index-v3 by the
 * format-version-3 library, commit 4235370). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "autoenc/autoenc.h"

#include "test_support.h"

#ifndef AE_TEST_DATA_DIR
#error "AE_TEST_DATA_DIR (the tests/data folder) must be defined"
#endif

static const char *tpath(const char *name) { return ae_test_path("%s", name); }

/* ---- an independent reader: little-endian fields and zlib's CRC-32 ------------ */
static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

static void put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static float lef32(const unsigned char *p)
{
    uint32_t u = le32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void fix_crc(unsigned char *b, size_t len) { put32(b + len - 4, crc32_ieee(b, len - 4)); }

static unsigned char *slurp(const char *path, size_t *len)
{
    unsigned char *b = ae_test_read_file(path, len);
    if (!b || *len == 0) fail_msg("cannot read %s", path);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t len)
{
    assert_int_equal(ae_test_write_file(path, b, len), 0);
}

/* Loads bytes through a file; checks the failure contract (no index, a
 * message, nothing leaked). */
static ae_status load_bytes(const unsigned char *b, size_t len)
{
    ae_index *l = (ae_index *)1;
    ae_status st;
    spit(tpath("bytes.aeidx"), b, len);
    st = ae_index_load(&l, tpath("bytes.aeidx"));
    if (st == AE_OK) ae_index_free(l);
    else {
        assert_null(l);
        assert_true(strlen(ae_last_error()) > 0);
    }
    assert_int_equal(ae_test_alloc_live_blocks(), 0);
    return st;
}

/* ---- the tiny data set and the fixtures ------------------------------------------ */
enum { TINY_N = 40, TINY_D = 4, TINY_NQ = 9 };

static void lcg_fill(float *x, size_t n, uint32_t seed)
{
    uint32_t s = seed;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)(s >> 8) / 16777216.0f * 2.0f - 1.0f; /* exact: k / 2^23 - 1 */
    }
}

static void tiny_data(float *x, int64_t *ids, int32_t *labels)
{
    lcg_fill(x, (size_t)TINY_N * TINY_D, 20240601u);
    for (int i = 0; i < TINY_N; i++) {
        ids[i] = 500 - 7 * (int64_t)i;
        labels[i] = i % 3;
    }
}

typedef struct fixture {
    const char *file;
    ae_index_backend backend;
    ae_index_metric metric;
    int with_ids;    /* else ids 0..n-1 */
    int with_labels;
    int64_t params[AE_INDEX_SEED + 1]; /* 0: the default */
} fixture;

/* file: the name without "_v<version>.aeidx" */
static const fixture g_fixtures[] = {
    {"brute_l2", AE_INDEX_BRUTE, AE_INDEX_L2, 0, 0, {0}},
    {"balltree_cosine", AE_INDEX_BALLTREE, AE_INDEX_COSINE, 1, 1,
     {[AE_INDEX_LEAF_SIZE] = 3}},
    {"hnsw_l2", AE_INDEX_HNSW, AE_INDEX_L2, 1, 1,
     {[AE_INDEX_HNSW_M] = 4, [AE_INDEX_HNSW_EF_CONSTRUCTION] = 20,
      [AE_INDEX_HNSW_EF_SEARCH] = 12, [AE_INDEX_SEED] = 7}},
};
#define N_FIXTURES (sizeof g_fixtures / sizeof g_fixtures[0])

static ae_status fixture_index(const fixture *f, ae_index **out)
{
    float x[TINY_N * TINY_D];
    int64_t ids[TINY_N];
    int32_t labels[TINY_N];
    ae_index *idx;
    ae_status st;
    tiny_data(x, ids, labels);
    *out = NULL;
    if ((st = ae_index_create(&idx, f->backend, f->metric, TINY_D)) != AE_OK) return st;
    for (int k = AE_INDEX_LEAF_SIZE; k <= AE_INDEX_SEED && st == AE_OK; k++)
        if (f->params[k]) st = ae_index_set_int(idx, (ae_index_param)k, f->params[k]);
    if (st == AE_OK)
        st = ae_index_build(idx, x, TINY_N, f->with_ids ? ids : NULL,
                            f->with_labels ? labels : NULL);
    if (st != AE_OK) ae_index_free(idx);
    else *out = idx;
    return st;
}

/* The committed fixture of an old format version (tests/data/index-v<N>/). */
static const char *fixture_path(const fixture *f, int version)
{
    static char p[1024];
    snprintf(p, sizeof p, "%s/index-v%d/%s_v%d.aeidx", AE_TEST_DATA_DIR, version, f->file,
             version);
    return p;
}

static int write_fixtures(const char *dir)
{
    for (size_t i = 0; i < N_FIXTURES; i++) {
        char p[1024];
        ae_index *idx;
        ae_status st = fixture_index(&g_fixtures[i], &idx);
        snprintf(p, sizeof p, "%s/%s_v4.aeidx", dir, g_fixtures[i].file);
        if (st == AE_OK) st = ae_index_save(idx, p);
        ae_index_free(idx);
        if (st != AE_OK) {
            fprintf(stderr, "%s: %s\n", p, ae_last_error());
            return 1;
        }
        printf("wrote %s\n", p);
    }
    return 0;
}

/* ---- version 1 ------------------------------------------------------------------ */
static void same_answers(const ae_index *a, const ae_index *b)
{
    float q[TINY_NQ * TINY_D], da[TINY_NQ * TINY_N], db[TINY_NQ * TINY_N];
    int64_t ia[TINY_NQ * TINY_N], ib[TINY_NQ * TINY_N];
    size_t ks[] = {1, 5, TINY_N};
    lcg_fill(q, sizeof q / sizeof q[0], 77u);
    memcpy(q, q + TINY_D, TINY_D * sizeof(float)); /* two equal queries */
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        for (size_t ef = 0; ef <= 30; ef += 30) {
            size_t k = ks[i] < ae_index_count(a) ? ks[i] : ae_index_count(a);
            assert_int_equal(ae_index_search(a, q, TINY_NQ, k, ef, da, ia), AE_OK);
            assert_int_equal(ae_index_search(b, q, TINY_NQ, k, ef, db, ib), AE_OK);
            assert_memory_equal(ia, ib, TINY_NQ * k * sizeof ia[0]);
            assert_memory_equal(da, db, TINY_NQ * k * sizeof da[0]);
        }
}

/* The fixtures of an old version load and answer as a fresh build. */
static void old_files_load(int version)
{
    for (size_t i = 0; i < N_FIXTURES; i++) {
        const fixture *f = &g_fixtures[i];
        size_t len;
        unsigned char *bytes = slurp(fixture_path(f, version), &len);
        ae_index *old = NULL, *fresh = NULL;
        int64_t v1, v2;
        assert_int_equal(le32(bytes + 8), (uint32_t)version); /* really that version */
        free(bytes);
        assert_int_equal(ae_index_load(&old, fixture_path(f, version)), AE_OK);
        assert_int_equal(fixture_index(f, &fresh), AE_OK);
        assert_int_equal(ae_index_backend_of(old), f->backend);
        assert_int_equal(ae_index_metric_of(old), f->metric);
        assert_int_equal(ae_index_dim(old), TINY_D);
        assert_int_equal(ae_index_count(old), TINY_N);
        assert_int_equal(ae_index_has_labels(old), f->with_labels);
        assert_int_equal(ae_index_memory_bytes(old), ae_index_memory_bytes(fresh));
        for (int k = AE_INDEX_LEAF_SIZE; k <= AE_INDEX_SEED; k++) {
            ae_status s1 = ae_index_get_int(&v1, old, (ae_index_param)k);
            assert_int_equal(s1,
                             ae_index_get_int(&v2, fresh, (ae_index_param)k));
            if (s1 == AE_OK) assert_int_equal(v1, v2);
        }
        for (size_t r = 0; r < TINY_N; r++) {
            int32_t l1, l2;
            assert_int_equal(ae_index_id_at(&v1, old, r), AE_OK);
            assert_int_equal(ae_index_id_at(&v2, fresh, r), AE_OK);
            assert_int_equal(v1, v2);
            if (f->with_labels) {
                assert_int_equal(ae_index_label_at(&l1, old, r), AE_OK);
                assert_int_equal(ae_index_label_at(&l2, fresh, r), AE_OK);
                assert_int_equal(l1, l2);
            }
        }
        same_answers(old, fresh);
        if (version >= 2) { /* mapped: read into the heap (unaligned), still read-only */
            ae_index *mapped;
            assert_int_equal(ae_index_map(&mapped, fixture_path(f, version), AE_INDEX_CHECK_BOUNDS),
                             AE_OK);
            assert_true(ae_index_is_mapped(mapped));
            same_answers(mapped, fresh);
            assert_int_equal(ae_index_compact(mapped), AE_ERR_STATE);
            ae_index_free(mapped);
        }
        /* the same index: re-saved, both give the same version-3 bytes */
        assert_int_equal(ae_index_save(old, tpath("old.aeidx")), AE_OK);
        assert_int_equal(ae_index_save(fresh, tpath("fresh.aeidx")), AE_OK);
        assert_true(ae_test_files_equal(tpath("old.aeidx"), tpath("fresh.aeidx")));
        ae_index_free(old);
        ae_index_free(fresh);
    }
}

static void test_v1_files_load(void **state)
{
    (void)state;
    old_files_load(1);
}

/* Version 2 (written by libautoenc 0.1.0 after the format-2 change, commit
 * 930281d): the layout of version 3 without its additions. */
static void test_v2_files_load(void **state)
{
    (void)state;
    old_files_load(2);
}

/* Version 3 (written by the format-version-3 library, commit 4235370):
 * version 4 without its alignment padding. */
static void test_v3_files_load(void **state)
{
    (void)state;
    old_files_load(3);
}

/* The ball-tree and HNSW fixtures built on the first TINY_N - 1 rows (odd:
 * in version 3 the removed flags and the HNSW levels are unpadded, so the
 * later sections sit at odd offsets), then three ids removed. The files of
 * tests/data/index-v3/<name>_removed_v3.aeidx were written by the
 * format-version-3 library (commit 4235370) with exactly these calls. */
static ae_status removed_index(const fixture *f, ae_index **out)
{
    float x[TINY_N * TINY_D];
    int64_t ids[TINY_N], gone[3];
    int32_t labels[TINY_N];
    ae_index *idx;
    ae_status st;
    tiny_data(x, ids, labels);
    gone[0] = ids[0];
    gone[1] = ids[5];
    gone[2] = ids[13];
    *out = NULL;
    if ((st = ae_index_create(&idx, f->backend, f->metric, TINY_D)) != AE_OK) return st;
    for (int k = AE_INDEX_LEAF_SIZE; k <= AE_INDEX_SEED && st == AE_OK; k++)
        if (f->params[k]) st = ae_index_set_int(idx, (ae_index_param)k, f->params[k]);
    if (st == AE_OK) st = ae_index_build(idx, x, TINY_N - 1, ids, labels);
    if (st == AE_OK) st = ae_index_remove(idx, gone, 3);
    if (st != AE_OK) ae_index_free(idx);
    else *out = idx;
    return st;
}

/* Version-3 files with removed rows and an odd row count load, map (into
 * the heap) and answer like the same index made now, and save as it does. */
static void test_v3_removed_files(void **state)
{
    (void)state;
    for (size_t i = 1; i < N_FIXTURES; i++) {
        const fixture *f = &g_fixtures[i];
        char p[1024];
        ae_index *old, *mapped, *fresh;
        snprintf(p, sizeof p, "%s/index-v3/%s_removed_v3.aeidx", AE_TEST_DATA_DIR, f->file);
        assert_int_equal(removed_index(f, &fresh), AE_OK);
        assert_int_equal(ae_index_load(&old, p), AE_OK);
        assert_int_equal(ae_index_map(&mapped, p, AE_INDEX_CHECK_BOUNDS), AE_OK);
        assert_int_equal(ae_index_count(old), TINY_N - 4);
        same_answers(old, fresh);
        same_answers(mapped, fresh);
        assert_int_equal(ae_index_save(old, tpath("old.aeidx")), AE_OK);
        assert_int_equal(ae_index_save(fresh, tpath("fresh.aeidx")), AE_OK);
        assert_true(ae_test_files_equal(tpath("old.aeidx"), tpath("fresh.aeidx")));
        ae_index_free(old);
        ae_index_free(mapped);
        ae_index_free(fresh);
    }
}

/* Version-1 header: payload size at 80, payload at 88 (docs, "Version 1"). */
static void test_v1_files_corrupt(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_FIXTURES; i++) {
        size_t len;
        unsigned char *f = slurp(fixture_path(&g_fixtures[i], 1), &len), *g = malloc(len + 1);
        assert_int_equal(load_bytes(f, len), AE_OK);
        for (size_t cut = 0; cut < len; cut++) assert_int_equal(load_bytes(f, cut), AE_ERR_FORMAT);
        memcpy(g, f, len);
        g[len] = 0;
        assert_int_equal(load_bytes(g, len + 1), AE_ERR_FORMAT);
        for (size_t off = 0; off < len; off += off < 100 ? 1 : 3) {
            ae_status st;
            memcpy(g, f, len);
            g[off] ^= 0x5A;
            st = load_bytes(g, len);
            if (off < 8) assert_int_equal(st, AE_ERR_FORMAT);
            else if (off < 12) assert_true(st == AE_ERR_VERSION || st == AE_ERR_FORMAT);
            else if (off >= 80 && off < 88) assert_int_equal(st, AE_ERR_FORMAT);
            else assert_int_equal(st, AE_ERR_CHECKSUM);
        }
        /* a parameter out of range, checksum fixed: AE_ERR_FORMAT */
        memcpy(g, f, len);
        put64(g + 48, 1); /* AE_INDEX_HNSW_M = 1 < 2 */
        fix_crc(g, len);
        assert_int_equal(load_bytes(g, len), AE_ERR_FORMAT);
        free(f);
        free(g);
    }
}

static void test_v1_files_alloc_fail(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_FIXTURES; i++)
        for (long k = 0;; k++) {
            ae_index *idx = NULL;
            ae_status st;
            ae_test_alloc_fail_at(k + 1);
            st = ae_index_load(&idx, fixture_path(&g_fixtures[i], 1));
            ae_test_alloc_fail_at(0);
            if (st == AE_OK) {
                ae_index_free(idx);
                break;
            }
            assert_int_equal(st, AE_ERR_NOMEM);
            assert_null(idx);
            assert_int_equal(ae_test_alloc_live_blocks(), 0);
        }
}

/* ---- version 4, read with the document's offsets only --------------------------------- */
/* versions 3 and 4 keep the layout of version 2, hence the names */
enum {
    V2_HEADER = 52, /* fixed header bytes, parameter pairs follow */
    V2_PAIR = 12,   /* u32 key, i64 value */
    V2_SECTION = 16 /* u32 tag, u32 reserved, u64 size */
};
enum {
    TAG_CODES = 1,
    TAG_IDS = 2,
    TAG_LABELS = 3,
    TAG_REMOVED = 4,
    TAG_BALLTREE = 16,
    TAG_HNSW = 17
};

/* Parses a version-4 file and checks every field against idx; x (input order,
 * n x d) is compared with the codes when not NULL (L2 and inner product: the
 * caller's codes as given). */
static void check_v4_file(const unsigned char *b, size_t len, const ae_index *idx,
                          const float *x)
{
    static const unsigned char magic[8] = {0x89, 'A', 'E', 'I', 'D', 'X', '\r', '\n'};
    const size_t n = (size_t)le64(b + 32), live = ae_index_count(idx), d = ae_index_dim(idx);
    const size_t dc = ae_index_metric_of(idx) == AE_INDEX_INNER_PRODUCT ? d + 1 : d;
    const int backend = (int)ae_index_backend_of(idx);
    size_t nremoved = 0;
    uint32_t npairs, prev_key = 0;
    size_t pos, tags = 0;
    uint32_t expect[5];
    size_t nexpect = 0;
    const unsigned char *perm = NULL; /* ball tree: internal row -> input row */
    int64_t params[AE_INDEX_SEED + 1] = {0};
    int present[AE_INDEX_SEED + 1] = {0};

    assert_true(len >= V2_HEADER + 4);
    assert_memory_equal(b, magic, 8);
    assert_int_equal(le32(b + 8), 4);
    assert_int_equal(le32(b + 12), (uint32_t)backend);
    assert_int_equal(le32(b + 16), (uint32_t)ae_index_metric_of(idx));
    assert_int_equal(le32(b + 20), (ae_index_has_labels(idx) ? 1u : 0u) | (n > live ? 2u : 0u));
    assert_int_equal(le64(b + 24), d);
    assert_true(n >= live);
    assert_int_equal(le64(b + 40), len);
    npairs = le32(b + 48);
    assert_int_equal(le32(b + len - 4), crc32_ieee(b, len - 4));

    /* the parameter pairs: exactly the keys the backend uses, ascending
     * (AE_INDEX_THREADS, a setting of the handle, is never saved) */
    pos = V2_HEADER;
    for (uint32_t i = 0; i < npairs; i++, pos += V2_PAIR) {
        uint32_t key = le32(b + pos);
        int64_t v = (int64_t)le64(b + pos + 4), got;
        assert_true(pos + V2_PAIR <= len - 4);
        assert_true(key > prev_key && key <= AE_INDEX_SEED);
        prev_key = key;
        assert_int_equal(ae_index_get_int(&got, idx, (ae_index_param)key),
                         AE_OK);
        assert_int_equal(v, got);
        params[key] = v;
        present[key] = 1;
    }
    for (int key = AE_INDEX_LEAF_SIZE; key <= AE_INDEX_SEED; key++) {
        int64_t got;
        assert_int_equal(present[key],
                         ae_index_get_int(&got, idx, (ae_index_param)key) == AE_OK);
    }

    /* the sections, in order */
    expect[nexpect++] = TAG_CODES;
    expect[nexpect++] = TAG_IDS;
    if (ae_index_has_labels(idx)) expect[nexpect++] = TAG_LABELS;
    if (n > live) expect[nexpect++] = TAG_REMOVED;
    if (backend == AE_INDEX_BALLTREE) expect[nexpect++] = TAG_BALLTREE;
    if (backend == AE_INDEX_HNSW) expect[nexpect++] = TAG_HNSW;
    while (pos < len - 4) {
        uint32_t tag;
        uint64_t size;
        const unsigned char *s;
        assert_true(pos + V2_SECTION <= len - 4);
        tag = le32(b + pos);
        assert_int_equal(le32(b + pos + 4), 0);
        size = le64(b + pos + 8);
        s = b + pos + V2_SECTION;
        assert_int_equal((pos + V2_SECTION) % 4, 0); /* every body 4-byte aligned */
        assert_true(size <= len - 4 - pos - V2_SECTION);
        assert_true(tags < nexpect);
        assert_int_equal(tag, expect[tags]);
        tags++;
        switch (tag) {
        case TAG_CODES:
            assert_int_equal(size, 4 * n * d);
            if (x && backend != AE_INDEX_BALLTREE)
                for (size_t i = 0; i < n * d; i++) assert_true(lef32(s + 4 * i) == x[i]);
            break;
        case TAG_IDS:
            assert_int_equal(size, 8 * n);
            for (size_t r = 0; r < n; r++) { /* a removed row has no id to ask for */
                int64_t id;
                if (ae_index_id_at(&id, idx, r) == AE_OK)
                    assert_int_equal((int64_t)le64(s + 8 * r), id);
            }
            break;
        case TAG_LABELS:
            assert_int_equal(size, 4 * n);
            for (size_t r = 0; r < n; r++) {
                int32_t lab;
                if (ae_index_label_at(&lab, idx, r) == AE_OK)
                    assert_int_equal((int32_t)le32(s + 4 * r), lab);
            }
            break;
        case TAG_REMOVED:
            assert_int_equal(size, (n + 3) / 4 * 4); /* zero padding to 4 bytes */
            for (size_t r = n; r < size; r++) assert_int_equal(s[r], 0);
            for (size_t r = 0; r < n; r++) {
                int64_t id;
                assert_true(s[r] <= 1);
                assert_int_equal(s[r], ae_index_id_at(&id, idx, r) != AE_OK);
                nremoved += s[r];
            }
            assert_int_equal(nremoved, n - live);
            break;
        case TAG_BALLTREE: {
            uint32_t levels = le32(s);
            size_t t = le32(s + 4) ? le32(s + 4) : n, nodes; /* rows in the tree */
            double leaf = (double)params[AE_INDEX_LEAF_SIZE], q = (double)(t - 1) / leaf;
            assert_true(t <= n);
            assert_int_equal(levels, 1 + (uint32_t)floor(log2(q > 1.0 ? q : 1.0)));
            nodes = ((size_t)1 << levels) - 1;
            assert_int_equal(size, 8 + 4 * n + 4 * nodes * (dc + 1));
            perm = s + 8;
            for (size_t r = t; r < n; r++) assert_int_equal(le32(perm + 4 * r), r); /* overflow */
            for (size_t i = 0; i < nodes; i++) /* radii: finite, >= 0 */
                assert_true(lef32(s + 8 + 4 * n + 4 * nodes * dc + 4 * i) >= 0.0f);
            break;
        }
        case TAG_HNSW: {
            uint32_t top = le32(s), entry = le32(s + 4);
            size_t m = (size_t)params[AE_INDEX_HNSW_M], upper = 0, lvb = (n + 3) / 4 * 4;
            assert_true(entry < n);
            assert_int_equal(s[8 + entry], top);
            for (size_t i = 0; i < n; i++) {
                assert_true(s[8 + i] <= top);
                upper += s[8 + i];
            }
            for (size_t i = n; i < lvb; i++) assert_int_equal(s[8 + i], 0); /* padding */
            assert_int_equal(size, 8 + lvb + 4 * n * (1 + 2 * m) + 4 * (1 + m) * upper);
            for (size_t i = 0; i < n; i++) { /* layer-0 counts and targets */
                const unsigned char *lk = s + 8 + lvb + 4 * i * (1 + 2 * m);
                assert_true(le32(lk) <= 2 * m);
                for (uint32_t j = 1; j <= le32(lk); j++) assert_true(le32(lk + 4 * j) < n);
            }
            break;
        }
        default: fail_msg("unknown section tag %u", tag);
        }
        pos += V2_SECTION + (size_t)size;
    }
    assert_int_equal(pos, len - 4);
    assert_int_equal(tags, nexpect);
    if (perm && x) { /* ball-tree codes are the input rows in tree order */
        const unsigned char *codes = b + V2_HEADER + V2_PAIR * npairs + V2_SECTION;
        for (size_t r = 0; r < n; r++) {
            uint32_t in = le32(perm + 4 * r);
            assert_true(in < n);
            for (size_t j = 0; j < d; j++)
                assert_true(lef32(codes + 4 * (r * d + j)) == x[in * d + j]);
        }
    }
}

/* Every backend and metric, as built and after adds (the ball tree's
 * overflow) and removals, read back by the offsets of the document; the
 * loaded index and the mapped one (both checks, file and buffer) answer as
 * the saved one, and save the same bytes. N is odd, so the padding of the
 * HNSW levels and of the removed flags is written. */
static void test_v4_layout(void **state)
{
    enum { N = 301, D = 7, NB = 200, NRM = 20 };
    float *x = malloc(N * D * sizeof(float));
    int64_t ids[N], gone[NRM];
    int32_t labels[N];
    (void)state;
    lcg_fill(x, N * D, 5u);
    for (int i = 0; i < N; i++) {
        ids[i] = (int64_t)(i * 37 % N) - 100;
        labels[i] = -i;
    }
    for (int i = 0; i < NRM; i++) gone[i] = ids[i * 13 + 2];
    for (int b = AE_INDEX_BRUTE; b <= AE_INDEX_HNSW; b++)
        for (int m = AE_INDEX_L2; m <= AE_INDEX_INNER_PRODUCT; m++)
            for (int with = 0; with < 4; with++) {
                ae_index *idx, *l;
                size_t len, len2;
                unsigned char *bytes, *bytes2;
                int live = with >= 2; /* added to and removed from */
                float q[3 * D], d1[3 * 5], d2[3 * 5];
                int64_t i1[3 * 5], i2[3 * 5];
                assert_int_equal(ae_index_create(&idx, (ae_index_backend)b, (ae_index_metric)m, D),
                                 AE_OK);
                if (b == AE_INDEX_BALLTREE)
                    assert_int_equal(ae_index_set_int(idx, AE_INDEX_LEAF_SIZE, 7), AE_OK);
                if (b == AE_INDEX_HNSW) {
                    assert_int_equal(ae_index_set_int(idx, AE_INDEX_HNSW_M, 5), AE_OK);
                    assert_int_equal(ae_index_set_int(idx, AE_INDEX_HNSW_EF_SEARCH, 33), AE_OK);
                }
                if (live) {
                    assert_int_equal(ae_index_build(idx, x, NB, ids, with & 1 ? labels : NULL),
                                     AE_OK);
                    assert_int_equal(ae_index_add(idx, x + NB * D, N - NB, ids + NB,
                                                  with & 1 ? labels + NB : NULL),
                                     AE_OK);
                    assert_int_equal(ae_index_remove(idx, gone, NRM), AE_OK);
                } else {
                    assert_int_equal(ae_index_build(idx, x, N, with ? ids : NULL,
                                                    with ? labels : NULL),
                                     AE_OK);
                }
                assert_int_equal(ae_index_save(idx, tpath("v4.aeidx")), AE_OK);
                bytes = slurp(tpath("v4.aeidx"), &len);
                check_v4_file(bytes, len, idx, m != AE_INDEX_COSINE ? x : NULL);
                assert_int_equal(ae_index_load(&l, tpath("v4.aeidx")), AE_OK);
                assert_int_equal(ae_index_count(l), ae_index_count(idx));
                lcg_fill(q, 3 * D, 9u);
                assert_int_equal(ae_index_search(idx, q, 3, 5, 0, d1, i1), AE_OK);
                assert_int_equal(ae_index_search(l, q, 3, 5, 0, d2, i2), AE_OK);
                assert_memory_equal(i1, i2, sizeof i1);
                assert_memory_equal(d1, d2, sizeof d1);
                assert_int_equal(ae_index_save(l, tpath("v4b.aeidx")), AE_OK);
                bytes2 = slurp(tpath("v4b.aeidx"), &len2);
                assert_int_equal(len2, len);
                assert_memory_equal(bytes, bytes2, len);
                free(bytes2);
                for (int how = 0; how < 4; how++) { /* file / buffer x full / bounds */
                    ae_index *mp;
                    ae_index_check ck = how & 1 ? AE_INDEX_CHECK_BOUNDS : AE_INDEX_CHECK_FULL;
                    if (how < 2) assert_int_equal(ae_index_map(&mp, tpath("v4.aeidx"), ck), AE_OK);
                    else assert_int_equal(ae_index_map_memory(&mp, bytes, len, ck), AE_OK);
                    assert_true(ae_index_is_mapped(mp));
                    assert_int_equal(ae_index_count(mp), ae_index_count(idx));
                    assert_int_equal(ae_index_search(mp, q, 3, 5, 0, d2, i2), AE_OK);
                    assert_memory_equal(i1, i2, sizeof i1);
                    assert_memory_equal(d1, d2, sizeof d1);
                    assert_int_equal(ae_index_save(mp, tpath("v4b.aeidx")), AE_OK);
                    bytes2 = slurp(tpath("v4b.aeidx"), &len2);
                    assert_int_equal(len2, len);
                    assert_memory_equal(bytes, bytes2, len);
                    free(bytes2);
                    ae_index_free(mp);
                }
                free(bytes);
                ae_index_free(idx);
                ae_index_free(l);
            }
    free(x);
}

/* Rewrites the parameter pairs of a version-4 file (size and CRC fixed up). */
static unsigned char *with_pairs(const unsigned char *b, size_t len, const uint32_t *keys,
                                 const int64_t *vals, uint32_t count, size_t *out_len)
{
    uint32_t old = le32(b + 48);
    size_t body = V2_HEADER + V2_PAIR * (size_t)old, nl = len - V2_PAIR * old + V2_PAIR * count;
    unsigned char *g = malloc(nl);
    memcpy(g, b, V2_HEADER);
    put32(g + 48, count);
    for (uint32_t i = 0; i < count; i++) {
        put32(g + V2_HEADER + V2_PAIR * i, keys[i]);
        put64(g + V2_HEADER + V2_PAIR * i + 4, (uint64_t)vals[i]);
    }
    memcpy(g + V2_HEADER + V2_PAIR * count, b + body, len - body);
    put64(g + 40, nl);
    fix_crc(g, nl);
    *out_len = nl;
    return g;
}

static void test_v2_params(void **state)
{
    const fixture *f = &g_fixtures[2]; /* HNSW: four parameters */
    ae_index *idx, *l;
    size_t len, gl;
    unsigned char *b, *g;
    int64_t v;
    (void)state;
    assert_int_equal(fixture_index(f, &idx), AE_OK);
    assert_int_equal(ae_index_save(idx, tpath("p.aeidx")), AE_OK);
    ae_index_free(idx);
    b = slurp(tpath("p.aeidx"), &len);
    assert_int_equal(le32(b + 48), 4);
    assert_int_equal(load_bytes(b, len), AE_OK);
    { /* the same pairs written back: the same file */
        uint32_t keys[4];
        int64_t vals[4];
        for (int i = 0; i < 4; i++) {
            keys[i] = le32(b + V2_HEADER + V2_PAIR * i);
            vals[i] = (int64_t)le64(b + V2_HEADER + V2_PAIR * i + 4);
        }
        g = with_pairs(b, len, keys, vals, 4, &gl);
        assert_int_equal(gl, len);
        assert_memory_equal(g, b, len);
        free(g);
    }
    { /* a missing key takes its default */
        uint32_t keys[3] = {AE_INDEX_HNSW_M, AE_INDEX_HNSW_EF_CONSTRUCTION, AE_INDEX_SEED};
        int64_t vals[3] = {4, 20, 7};
        g = with_pairs(b, len, keys, vals, 3, &gl);
        spit(tpath("q.aeidx"), g, gl);
        assert_int_equal(ae_index_load(&l, tpath("q.aeidx")), AE_OK);
        assert_int_equal(ae_index_get_int(&v, l, AE_INDEX_HNSW_EF_SEARCH),
                         AE_OK);
        assert_int_equal(v, 64);
        assert_int_equal(ae_index_get_int(&v, l, AE_INDEX_HNSW_M), AE_OK);
        assert_int_equal(v, 4);
        ae_index_free(l);
        free(g);
    }
    { /* a key this library does not know: written by a newer one */
        uint32_t keys[5] = {AE_INDEX_HNSW_M, AE_INDEX_HNSW_EF_CONSTRUCTION,
                            AE_INDEX_HNSW_EF_SEARCH, AE_INDEX_SEED, 1000};
        int64_t vals[5] = {4, 20, 12, 7, 1};
        g = with_pairs(b, len, keys, vals, 5, &gl);
        assert_int_equal(load_bytes(g, gl), AE_ERR_VERSION);
        free(g);
    }
    { /* a key the backend uses but that is never saved (a setting of the handle) */
        uint32_t keys[5] = {AE_INDEX_HNSW_M, AE_INDEX_HNSW_EF_CONSTRUCTION,
                            AE_INDEX_HNSW_EF_SEARCH, AE_INDEX_SEED, AE_INDEX_THREADS};
        int64_t vals[5] = {4, 20, 12, 7, 2};
        g = with_pairs(b, len, keys, vals, 5, &gl);
        assert_int_equal(load_bytes(g, gl), AE_ERR_FORMAT);
        assert_non_null(strstr(ae_last_error(), "AE_INDEX_THREADS"));
        free(g);
    }
    { /* a key another backend uses */
        uint32_t keys[2] = {AE_INDEX_LEAF_SIZE, AE_INDEX_HNSW_M};
        int64_t vals[2] = {40, 4};
        g = with_pairs(b, len, keys, vals, 2, &gl);
        assert_int_equal(load_bytes(g, gl), AE_ERR_FORMAT);
        free(g);
    }
    { /* keys out of order, repeated, key 0, a value out of range */
        uint32_t k1[2] = {AE_INDEX_SEED, AE_INDEX_HNSW_M};
        uint32_t k2[2] = {AE_INDEX_HNSW_M, AE_INDEX_HNSW_M}, k3[1] = {0}, k4[1] = {AE_INDEX_HNSW_M};
        int64_t v1[2] = {7, 4}, v2[2] = {4, 4}, v3[1] = {4}, v4[1] = {1};
        g = with_pairs(b, len, k1, v1, 2, &gl);
        assert_int_equal(load_bytes(g, gl), AE_ERR_FORMAT);
        free(g);
        g = with_pairs(b, len, k2, v2, 2, &gl);
        assert_int_equal(load_bytes(g, gl), AE_ERR_FORMAT);
        free(g);
        g = with_pairs(b, len, k3, v3, 1, &gl);
        assert_int_equal(load_bytes(g, gl), AE_ERR_FORMAT);
        free(g);
        g = with_pairs(b, len, k4, v4, 1, &gl);
        assert_int_equal(load_bytes(g, gl), AE_ERR_FORMAT);
        free(g);
    }
    { /* a pair count running past the file */
        memcpy(b + 48, "\xff\xff\xff\x0f", 4);
        fix_crc(b, len);
        assert_int_equal(load_bytes(b, len), AE_ERR_FORMAT);
    }
    free(b);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_v1_files_load, NULL, ae_test_alloc_teardown),
        cmocka_unit_test_setup_teardown(test_v1_files_corrupt, NULL, ae_test_alloc_teardown),
        cmocka_unit_test_setup_teardown(test_v1_files_alloc_fail, NULL, ae_test_alloc_teardown),
        cmocka_unit_test_setup_teardown(test_v2_files_load, NULL, ae_test_alloc_teardown),
        cmocka_unit_test_setup_teardown(test_v3_files_load, NULL, ae_test_alloc_teardown),
        cmocka_unit_test_setup_teardown(test_v3_removed_files, NULL, ae_test_alloc_teardown),
        cmocka_unit_test_setup_teardown(test_v4_layout, NULL, ae_test_alloc_teardown),
        cmocka_unit_test_setup_teardown(test_v2_params, NULL, ae_test_alloc_teardown),
    };
    if (argc == 3 && strcmp(argv[1], "--write-fixtures") == 0) return write_fixtures(argv[2]);
    return cmocka_run_group_tests_name("index_format", tests, ae_test_group_setup, ae_test_group_teardown);
}
