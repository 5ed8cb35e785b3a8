/* Approximate HNSW backend (Malkov & Yashunin 2016; the algorithm of
 * hnswlib: greedy descent through the upper layers, a beam search of width ef
 * on layer 0, neighbours chosen by the "heuristic" that keeps a candidate only
 * if it is closer to the new node than to every neighbour already kept).
 *
 * Layout: layer-0 links are one contiguous array of n x (1 + 2M) u32 (count
 * then links); upper layers of the few nodes that have them are packed in a
 * second array with per-node offsets. The graph is read-only after build, so
 * searches share it freely; each search call owns its visited bitmap and
 * heaps. The final candidates are ranked again in double precision and ties
 * broken by id, like the exact backends. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "index_impl.h"

typedef struct hscratch {
    uint64_t *visited;
    size_t vwords;
    ae__nb *cand; /* min-heap of nodes to expand */
    size_t cand_cap;
    ae__nb *top; /* max-heap of the ef best found */
    size_t top_cap;
} hscratch;

static inline uint32_t *hlinks(const ae_index *idx, uint32_t node, uint32_t layer)
{
    if (layer == 0) return idx->h_links0 + (size_t)node * (1 + idx->h_m0);
    return idx->h_upper + idx->h_upper_off[node] + (size_t)(layer - 1) * (1 + idx->h_m);
}

static inline const float *hvec(const ae_index *idx, uint32_t r)
{
    return idx->data + (size_t)r * idx->dim;
}

static ae_status scratch_init(hscratch *s, size_t n, size_t ef)
{
    memset(s, 0, sizeof *s);
    s->vwords = (n + 63) / 64;
    s->visited = ae__malloc(s->vwords * sizeof(uint64_t));
    s->cand_cap = ef < 64 ? 256 : 4 * ef;
    s->cand = ae__malloc(s->cand_cap * sizeof(ae__nb));
    s->top_cap = ef + 1;
    s->top = ae__malloc(s->top_cap * sizeof(ae__nb));
    if (!s->visited || !s->cand || !s->top) return AE_ERR_NOMEM;
    return AE_OK;
}

static void scratch_free(hscratch *s)
{
    ae__free(s->visited, s->vwords * sizeof(uint64_t));
    ae__free(s->cand, s->cand_cap * sizeof(ae__nb));
    ae__free(s->top, s->top_cap * sizeof(ae__nb));
    memset(s, 0, sizeof *s);
}

/* Greedy walk on an upper layer towards q. */
AE__HOT static uint32_t greedy(const ae_index *idx, const float *q, uint32_t ep, float *epd,
                               uint32_t layer)
{
    size_t d = idx->dim;
    float best = *epd;
    int changed = 1;
    while (changed) {
        const uint32_t *lk = hlinks(idx, ep, layer);
        uint32_t cnt = lk[0];
        changed = 0;
        for (uint32_t j = 1; j <= cnt; j++) {
            float t = ae__l2sq(q, hvec(idx, lk[j]), d);
            if (t < best) {
                best = t;
                ep = lk[j];
                changed = 1;
            }
        }
    }
    *epd = best;
    return ep;
}

/* Beam search of width ef on one layer from ep; leaves the results in s->top
 * (a max-heap) and returns their number, or 0 when out of memory. */
AE__HOT static size_t search_layer(const ae_index *idx, const float *q, uint32_t ep, float epd,
                                   size_t ef, uint32_t layer, hscratch *s)
{
    size_t d = idx->dim, nc = 0, nt = 0;
    uint64_t *vis = s->visited;
    float lower;
    memset(vis, 0, s->vwords * sizeof(uint64_t));
    vis[ep >> 6] |= (uint64_t)1 << (ep & 63);
    {
        ae__nb v = {epd, ep};
        ae__minheap_push(s->cand, &nc, v);
        ae__maxheap_push(s->top, &nt, v);
    }
    lower = epd;
    while (nc > 0) {
        ae__nb c = s->cand[0];
        const uint32_t *lk;
        uint32_t cnt;
        if (c.d > lower) break;
        ae__minheap_pop(s->cand, &nc);
        lk = hlinks(idx, c.r, layer);
        cnt = lk[0];
        if (cnt > 0) AE__PREFETCH(hvec(idx, lk[1]));
        for (uint32_t j = 1; j <= cnt; j++) {
            uint32_t nb = lk[j];
            uint64_t bit = (uint64_t)1 << (nb & 63);
            float t;
            if (j < cnt) AE__PREFETCH(hvec(idx, lk[j + 1]));
            if (vis[nb >> 6] & bit) continue;
            vis[nb >> 6] |= bit;
            t = ae__l2sq(q, hvec(idx, nb), d);
            if (nt < ef || t < lower) {
                ae__nb v = {t, nb};
                if (nc == s->cand_cap) {
                    size_t ncap = 2 * s->cand_cap;
                    ae__nb *p = ae__realloc(s->cand, s->cand_cap * sizeof(ae__nb),
                                            ncap * sizeof(ae__nb));
                    if (!p) return 0;
                    s->cand = p;
                    s->cand_cap = ncap;
                }
                ae__minheap_push(s->cand, &nc, v);
                if (nt < ef) ae__maxheap_push(s->top, &nt, v);
                else ae__maxheap_replace(s->top, nt, v);
                lower = s->top[0].d;
            }
        }
    }
    return nt;
}

static int cmp_nb(const void *a, const void *b)
{
    const ae__nb *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

/* hnswlib's neighbour heuristic on cand[0..nc) sorted ascending: keeps a
 * candidate only if no kept neighbour is closer to it than the base point.
 * Writes at most m rows to out and returns their number. */
static size_t heuristic(const ae_index *idx, const ae__nb *cand, size_t nc, size_t m,
                        ae__nb *out)
{
    size_t d = idx->dim, no = 0;
    if (nc <= m) {
        memcpy(out, cand, nc * sizeof *out);
        return nc;
    }
    for (size_t i = 0; i < nc && no < m; i++) {
        int good = 1;
        for (size_t j = 0; j < no; j++)
            if (ae__l2sq(hvec(idx, cand[i].r), hvec(idx, out[j].r), d) < cand[i].d) {
                good = 0;
                break;
            }
        if (good) out[no++] = cand[i];
    }
    return no;
}

typedef struct hbuild {
    hscratch s;
    ae__nb *sorted, *sel; /* sized max(ef_construction, m0 + 1) */
    size_t cap;
} hbuild;

/* Adds link e -> nu on a layer, shrinking e's list with the heuristic if full. */
static void add_link(ae_index *idx, hbuild *b, uint32_t e, uint32_t nu, float dist,
                     uint32_t layer)
{
    uint32_t *lk = hlinks(idx, e, layer);
    uint32_t cap = layer == 0 ? idx->h_m0 : idx->h_m, cnt = lk[0];
    size_t d = idx->dim, ns;
    if (cnt < cap) {
        lk[1 + cnt] = nu;
        lk[0] = cnt + 1;
        return;
    }
    for (uint32_t j = 0; j < cnt; j++) {
        b->sorted[j].r = lk[1 + j];
        b->sorted[j].d = ae__l2sq(hvec(idx, e), hvec(idx, lk[1 + j]), d);
    }
    b->sorted[cnt].r = nu;
    b->sorted[cnt].d = dist;
    qsort(b->sorted, cnt + 1, sizeof(ae__nb), cmp_nb);
    ns = heuristic(idx, b->sorted, cnt + 1, cap, b->sel);
    for (size_t j = 0; j < ns; j++) lk[1 + j] = b->sel[j].r;
    lk[0] = (uint32_t)ns;
}

AE__HOT static ae_status insert(ae_index *idx, hbuild *b, uint32_t i, size_t efc)
{
    const float *q = hvec(idx, i);
    uint32_t lvl = idx->h_levels[i], ep = idx->h_entry;
    float epd = ae__l2sq(q, hvec(idx, ep), idx->dim);
    for (uint32_t l = idx->h_max_level; l > lvl; l--) ep = greedy(idx, q, ep, &epd, l);
    for (uint32_t l = lvl < idx->h_max_level ? lvl : idx->h_max_level;; l--) {
        size_t nt = search_layer(idx, q, ep, epd, efc, l, &b->s), ns;
        uint32_t *lk = hlinks(idx, i, l);
        if (nt == 0) return AE_ERR_NOMEM;
        memcpy(b->sorted, b->s.top, nt * sizeof(ae__nb));
        qsort(b->sorted, nt, sizeof(ae__nb), cmp_nb);
        ns = heuristic(idx, b->sorted, nt, idx->h_m, b->sel);
        lk[0] = (uint32_t)ns;
        for (size_t j = 0; j < ns; j++) lk[1 + j] = b->sel[j].r;
        ep = b->sorted[0].r; /* the closest found enters the next layer down */
        epd = b->sorted[0].d;
        /* add_link reuses the sorted/sel buffers: take the links from lk */
        for (size_t j = 0; j < ns; j++) {
            uint32_t e = lk[1 + j];
            add_link(idx, b, e, i, ae__l2sq(q, hvec(idx, e), idx->dim), l);
        }
        if (l == 0) break;
    }
    if (lvl > idx->h_max_level) {
        idx->h_max_level = lvl;
        idx->h_entry = i;
    }
    return AE_OK;
}

ae_status ae__hnsw_build(ae_index *idx)
{
    size_t n = idx->n, m = (size_t)idx->params[AE_INDEX_HNSW_M];
    size_t efc = (size_t)idx->params[AE_INDEX_HNSW_EF_CONSTRUCTION], upper = 0;
    double mult = 1.0 / log((double)m);
    ae__rng rng;
    hbuild b;
    ae_status st = AE_OK;

    idx->h_m = (uint32_t)m;
    idx->h_m0 = (uint32_t)(2 * m);
    idx->h_levels = ae__malloc(n);
    idx->h_upper_off = ae__malloc(n * sizeof(uint64_t));
    idx->h_links0 = ae__calloc(n, (1 + 2 * m) * sizeof(uint32_t));
    if (!idx->h_levels || !idx->h_upper_off || !idx->h_links0)
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the HNSW graph");
    ae__rng_seed(&rng, (uint64_t)idx->params[AE_INDEX_SEED]);
    for (size_t i = 0; i < n; i++) {
        double u = ((double)(ae__rng_next(&rng) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
        double l = floor(-log(u) * mult);
        uint32_t lv = l > AE__HNSW_MAX_LEVEL ? AE__HNSW_MAX_LEVEL : (uint32_t)l;
        idx->h_levels[i] = (uint8_t)lv;
        idx->h_upper_off[i] = upper;
        upper += (size_t)lv * (1 + m);
    }
    idx->h_upper_len = upper;
    if (upper) {
        idx->h_upper = ae__calloc(upper, sizeof(uint32_t));
        if (!idx->h_upper)
            return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the HNSW graph");
    }
    memset(&b, 0, sizeof b);
    b.cap = (efc > 2 * m + 1 ? efc : 2 * m + 1) + 1;
    b.sorted = ae__malloc(b.cap * sizeof(ae__nb));
    b.sel = ae__malloc(b.cap * sizeof(ae__nb));
    if (scratch_init(&b.s, n, efc) != AE_OK || !b.sorted || !b.sel) {
        st = ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the HNSW build");
        goto done;
    }
    idx->h_entry = 0;
    idx->h_max_level = idx->h_levels[0];
    for (size_t i = 1; i < n; i++)
        if ((st = insert(idx, &b, (uint32_t)i, efc)) != AE_OK) {
            st = ae__fail(NULL, AE_ERR_NOMEM, "out of memory in the HNSW build");
            goto done;
        }
done:
    scratch_free(&b.s);
    ae__free(b.sorted, b.cap * sizeof(ae__nb));
    ae__free(b.sel, b.cap * sizeof(ae__nb));
    return st;
}

ae_status ae__hnsw_search(const ae_index *idx, const float *q, size_t nq, size_t k, size_t ef,
                          float *dist, int64_t *ids)
{
    size_t n = idx->n, d = idx->dim;
    hscratch s;
    ae__res *res = NULL;
    size_t res_cap;
    ae_status st = AE_OK;

    if (ef < k) ef = k;
    res_cap = ef + 1; /* the whole candidate list (>= k) */
    res = ae__malloc(res_cap * sizeof *res);
    if (scratch_init(&s, n, ef) != AE_OK || !res) {
        st = ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nq; i++) {
        const float *qi = q + i * d;
        uint32_t ep = idx->h_entry;
        float epd = ae__l2sq(qi, hvec(idx, ep), d);
        size_t nt;
        for (uint32_t l = idx->h_max_level; l > 0; l--) ep = greedy(idx, qi, ep, &epd, l);
        nt = search_layer(idx, qi, ep, epd, ef, 0, &s);
        if (nt == 0) {
            st = ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (nt < k) /* disconnected graph: fall back to an exact answer */
            ae__idx_exact_scan(idx, qi, k, res);
        else
            ae__idx_order(idx, s.top, nt, res);
        ae__idx_emit(idx, res, k, dist ? dist + i * k : NULL, ids + i * k);
    }
done:
    scratch_free(&s);
    ae__free(res, res_cap * sizeof *res);
    return st;
}
