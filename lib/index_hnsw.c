/* Approximate HNSW backend (Malkov & Yashunin 2016; the algorithm of
 * hnswlib: greedy descent through the upper layers, a beam search of width ef
 * on layer 0, neighbours chosen by the "heuristic" that keeps a candidate only
 * if it is closer to the new node than to every neighbour already kept).
 *
 * Layout: layer-0 links are one contiguous array of n x (1 + 2M) u32 (count
 * then links); upper layers of the few nodes that have them are packed in a
 * second array with per-node offsets. The graph is read-only after build, so
 * searches share it freely; each search call owns its visited bitmap and
 * heaps. Results are the ef best candidates found, ordered by their float
 * distance, ties broken by id.
 *
 * Threaded build and add (AE_INDEX_THREADS > 1, hnswlib's scheme): the
 * levels are drawn up front as in the serial build, the threads of a pool
 * take rows from an atomic counter, and each node's link lists (every layer)
 * have a one-byte spin lock that serialises their writers: the new node's
 * own lists, and the reverse links (with their heuristic shrink) added under
 * the neighbour's lock. Readers take no lock: a walk copies a list with
 * atomic loads (the count with acquire, stored last with release by its
 * writer), so it sees the links as they were before or after a write, or a
 * mix of the two during a shrink: node numbers all the same, which is all a
 * walk needs (hnswlib's searches read unlocked as well), and a walk never
 * waits for a writer that the scheduler has parked. A mutex guards the
 * entry point; an insert that raises the top level holds it to the end, so
 * the new entry is published only once it is linked. A thread holds at most
 * one node lock at a time, and never while it waits for the entry mutex.
 * A node being inserted is visible on a layer once its list there is
 * written, but its lists below are still empty: a search that descended
 * into it would link the next node to it alone (measured: 13 of 4,000 codes
 * unreachable with 3 threads on 2 cores). So each node records the lowest
 * layer whose list it has written, and a descent moves only to nodes whose
 * list on the next layer down is written. */
#define _POSIX_C_SOURCE 200809L /* pthread_rwlock_t (index_impl.h) */
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "index_impl.h"
#include "nn.h" /* the thread pool */

#define MAX_LEVEL 48

typedef struct hnsw {
    size_t cap;              /* nodes allocated in levels, links0, upper_off */
    uint32_t m, m0;          /* max links on upper layers / layer 0 */
    uint32_t max_level, entry;
    uint8_t *levels;         /* top layer of each node */
    uint32_t *links0;        /* n x (1 + m0): count then links */
    uint64_t *upper_off;     /* n: offset into upper of layer 1 (levels > 0) */
    uint32_t *upper;         /* per node, per layer 1..level: count + m links */
    size_t upper_len;        /* u32 entries in upper */
    size_t upper_cap;        /* u32 entries allocated in upper */
    int borrowed;            /* links0 and upper point into a mapped file */
} hnsw;

typedef struct hscratch {
    uint64_t *visited;
    size_t vwords;
    ae__nb *cand; /* min-heap of nodes to expand */
    size_t cand_cap;
    ae__nb *top; /* max-heap of the ef best found */
    size_t top_cap;
} hscratch;

/* The locks of a threaded insert; a serial one passes NULL and locks
 * nothing. */
typedef struct hsync {
    atomic_uchar *node;  /* per node: its link lists on every layer */
    atomic_uchar *ready; /* per node: lowest layer whose list is written
                            (its level + 1 before that) */
    size_t nodes;
    pthread_mutex_t top; /* h->entry and h->max_level */
} hsync;

/* Spins before a waiting thread yields its core: on a machine with more
 * threads than cores the holder may be descheduled. */
#define LOCK_SPINS_BEFORE_YIELD 256

static inline void node_lock(const hsync *sy, uint32_t r)
{
    atomic_uchar *l;
    if (!sy) return;
    l = &sy->node[r];
    while (atomic_exchange_explicit(l, 1, memory_order_acquire)) {
        int spins = 0;
        while (atomic_load_explicit(l, memory_order_relaxed)) {
            if (++spins < LOCK_SPINS_BEFORE_YIELD) {
                ae__cpu_relax();
            } else {
                sched_yield();
                spins = 0;
            }
        }
    }
}

static inline void node_unlock(const hsync *sy, uint32_t r)
{
    if (sy) atomic_store_explicit(&sy->node[r], 0, memory_order_release);
}

/* Whether a descent may enter node r on layer (its list there is written);
 * always in a serial insert. */
static inline int ready_at(const hsync *sy, uint32_t r, uint32_t layer)
{
    return !sy || atomic_load_explicit(&sy->ready[r], memory_order_acquire) <= layer;
}

static inline uint32_t *hlinks(const hnsw *h, uint32_t node, uint32_t layer)
{
    if (layer == 0) return h->links0 + (size_t)node * (1 + h->m0);
    return h->upper + h->upper_off[node] + (size_t)(layer - 1) * (1 + h->m);
}

static inline const float *hvec(const ae_index *idx, uint32_t r)
{
    return idx->data + (size_t)r * idx->sdim;
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

/* A list's entries while other threads may read it: the links stored
 * relaxed, then the count with release (copy_links' acquire pairs with it).
 * The GCC/Clang builtins, since the lists are plain uint32_t arrays (also
 * saved and mapped as they are). */
static inline void link_set(uint32_t *lk, size_t j, uint32_t v)
{
    __atomic_store_n(&lk[j], v, __ATOMIC_RELAXED);
}

static inline void link_set_count(uint32_t *lk, uint32_t cnt)
{
    __atomic_store_n(&lk[0], cnt, __ATOMIC_RELEASE);
}

/* Copies node r's list on a layer (count, then links) to copy while writers
 * may change it, the count clamped to cmax; returns copy. */
static inline const uint32_t *copy_links(const hnsw *h, uint32_t r, uint32_t layer,
                                         uint32_t cmax, uint32_t *copy)
{
    const uint32_t *lk = hlinks(h, r, layer);
    uint32_t cnt = __atomic_load_n(&lk[0], __ATOMIC_ACQUIRE);
    if (cnt > cmax) cnt = cmax;
    copy[0] = cnt;
    for (uint32_t j = 1; j <= cnt; j++) copy[j] = __atomic_load_n(&lk[j], __ATOMIC_RELAXED);
    return copy;
}

/* Greedy walk on an upper layer towards q. sy: the locks of a threaded
 * insert (each list is then read through copy, 1 + M entries, and the walk
 * moves only to nodes it may enter on the layer below), or NULL. */
AE__HOT static uint32_t greedy(const ae_index *idx, const hnsw *h, const hsync *sy,
                               uint32_t *copy, const float *q, uint32_t ep, float *epd,
                               uint32_t layer)
{
    size_t d = idx->sdim;
    float best = *epd;
    int changed = 1;
    while (changed) {
        const uint32_t *lk = sy ? copy_links(h, ep, layer, h->m, copy) : hlinks(h, ep, layer);
        uint32_t cnt = lk[0];
        changed = 0;
        for (uint32_t j = 1; j <= cnt; j++) {
            float t = ae__l2sq(q, hvec(idx, lk[j]), d);
            if (t < best && ready_at(sy, lk[j], layer - 1)) {
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
 * (a max-heap) and returns their number, or 0 when out of memory. The rows,
 * the layer-0 lists and their stride are read into locals before the loop:
 * reading them through idx and h inside it measured 12-29% more CPU time per
 * query (70k x 128 codes, ef 32-128). build: a search of an insert, which
 * prefetches the list of the next candidate (one-thread build of 70k x 128
 * codes, M 16, ef_construction 200: 20.9 and 22.3 s against 23.4 and
 * 25.7 s without, interleaved runs); sy: as in
 * greedy (copy holds 1 + 2M entries). Inlined into the functions below with
 * build and sy constant, so the loop of the searches is as measured. */
AE__ALWAYS_INLINE size_t search_layer_impl(const ae_index *idx, const hnsw *h, const float *q,
                                           uint32_t ep, float epd, size_t ef, uint32_t layer,
                                           hscratch *s, int build, const hsync *sy,
                                           uint32_t *copy)
{
    const size_t d = idx->sdim, stride0 = 1 + (size_t)h->m0;
    const float *data = idx->data;
    const uint32_t *links0 = h->links0;
    const uint32_t nodes = (uint32_t)idx->n, cmax = layer == 0 ? h->m0 : h->m;
    size_t nc = 0, nt = 0;
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
        if (sy) lk = copy_links(h, c.r, layer, cmax, copy);
        else lk = layer == 0 ? links0 + (size_t)c.r * stride0 : hlinks(h, c.r, layer);
        /* the next candidate's list, fetched while this one's rows are read */
        if (build && nc > 0) AE__PREFETCH(hlinks(h, s->cand[0].r, layer));
        cnt = lk[0];
        /* checked here, not at load, for a mapped file's layer 0
         * (AE_INDEX_CHECK_BOUNDS): a bad count or link is skipped */
        if (AE__UNLIKELY(cnt > cmax)) cnt = cmax;
        if (cnt > 0) AE__PREFETCH(data + (size_t)lk[1] * d);
        for (uint32_t j = 1; j <= cnt; j++) {
            uint32_t nb = lk[j];
            uint64_t bit = (uint64_t)1 << (nb & 63);
            float t;
            if (j < cnt) AE__PREFETCH(data + (size_t)lk[j + 1] * d);
            if (AE__UNLIKELY(nb >= nodes)) continue;
            if (vis[nb >> 6] & bit) continue;
            vis[nb >> 6] |= bit;
            t = ae__l2sq(q, data + (size_t)nb * d, d);
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

AE__HOT static size_t search_layer(const ae_index *idx, const hnsw *h, const float *q,
                                   uint32_t ep, float epd, size_t ef, uint32_t layer,
                                   hscratch *s)
{
    return search_layer_impl(idx, h, q, ep, epd, ef, layer, s, 0, NULL, NULL);
}

/* search_layer for an insert: serial (sy NULL) or threaded. */
AE__HOT static size_t search_layer_insert(const ae_index *idx, const hnsw *h, const float *q,
                                          uint32_t ep, float epd, size_t ef, uint32_t layer,
                                          hscratch *s, const hsync *sy, uint32_t *copy)
{
    if (sy) return search_layer_impl(idx, h, q, ep, epd, ef, layer, s, 1, sy, copy);
    return search_layer_impl(idx, h, q, ep, epd, ef, layer, s, 1, NULL, NULL);
}

/* search_layer on layer 0 for a search whose results are restricted by sel
 * (hnswlib's filtered search): every node still guides the walk, only the
 * allowed ones enter the results, and the walk stops only once it holds ef
 * allowed nodes (or runs out of candidates), which is how it widens for a
 * selective filter. Kept apart from search_layer so that the unfiltered loop
 * stays as measured. */
AE__HOT static size_t search_layer_sel(const ae_index *idx, const hnsw *h, const float *q,
                                       uint32_t ep, float epd, size_t ef, const ae__sel *sel,
                                       hscratch *s)
{
    const size_t d = idx->sdim, stride0 = 1 + (size_t)h->m0;
    const float *data = idx->data;
    const uint32_t *links0 = h->links0;
    const uint32_t nodes = (uint32_t)idx->n;
    size_t nc = 0, nt = 0;
    uint64_t *vis = s->visited;
    float lower = INFINITY;
    memset(vis, 0, s->vwords * sizeof(uint64_t));
    vis[ep >> 6] |= (uint64_t)1 << (ep & 63);
    {
        ae__nb v = {epd, ep};
        ae__minheap_push(s->cand, &nc, v);
        if (ae__sel_ok(idx, sel, ep)) {
            ae__maxheap_push(s->top, &nt, v);
            lower = epd;
        }
    }
    while (nc > 0) {
        ae__nb c = s->cand[0];
        const uint32_t *lk;
        uint32_t cnt;
        if (c.d > lower && nt == ef) break;
        ae__minheap_pop(s->cand, &nc);
        lk = links0 + (size_t)c.r * stride0;
        cnt = lk[0];
        if (AE__UNLIKELY(cnt > h->m0)) cnt = h->m0; /* as in search_layer */
        if (cnt > 0) AE__PREFETCH(data + (size_t)lk[1] * d);
        for (uint32_t j = 1; j <= cnt; j++) {
            uint32_t nb = lk[j];
            uint64_t bit = (uint64_t)1 << (nb & 63);
            float t;
            if (j < cnt) AE__PREFETCH(data + (size_t)lk[j + 1] * d);
            if (AE__UNLIKELY(nb >= nodes)) continue;
            if (vis[nb >> 6] & bit) continue;
            vis[nb >> 6] |= bit;
            t = ae__l2sq(q, data + (size_t)nb * d, d);
            if (nt < ef || t < lower) {
                ae__nb v = {t, nb};
                if (nc == s->cand_cap) {
                    size_t ncap = 2 * s->cand_cap;
                    ae__nb *p = ae__realloc(s->cand, s->cand_cap * sizeof(ae__nb),
                                            ncap * sizeof(ae__nb));
                    if (!p) return SIZE_MAX;
                    s->cand = p;
                    s->cand_cap = ncap;
                }
                ae__minheap_push(s->cand, &nc, v);
                if (ae__sel_ok(idx, sel, nb)) {
                    if (nt < ef) ae__maxheap_push(s->top, &nt, v);
                    else ae__maxheap_replace(s->top, nt, v);
                    if (nt == ef) lower = s->top[0].d;
                }
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
    size_t d = idx->sdim, no = 0;
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

/* One inserting thread's scratch. */
typedef struct hbuild {
    hscratch s;
    ae__nb *sorted, *sel; /* sized max(ef_construction, m0 + 1) */
    ae__nb *chosen;       /* the new node's neighbours on a layer (cap entries) */
    uint32_t *copy;       /* a list copied for a walk (1 + m0) */
    size_t cap, copy_cap;
} hbuild;

/* Adds link e -> nu on a layer, shrinking e's list with the heuristic if
 * full; under e's lock in a threaded insert. */
static void add_link(const ae_index *idx, hnsw *h, hbuild *b, const hsync *sy, uint32_t e,
                     uint32_t nu, float dist, uint32_t layer)
{
    uint32_t *lk = hlinks(h, e, layer);
    uint32_t cap = layer == 0 ? h->m0 : h->m, cnt;
    size_t d = idx->sdim, ns;
    node_lock(sy, e);
    cnt = lk[0];
    if (cnt < cap) {
        link_set(lk, 1 + cnt, nu);
        link_set_count(lk, cnt + 1);
        node_unlock(sy, e);
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
    for (size_t j = 0; j < ns; j++) link_set(lk, 1 + j, b->sel[j].r);
    link_set_count(lk, (uint32_t)ns);
    node_unlock(sy, e);
}

/* The neighbours an insert links q to on layer l: a search from ep (at
 * distance epd) whose *nt results land in b->sorted, nearest first, and the
 * heuristic's pick of them in b->chosen, whose count it returns. *nt = 0:
 * out of memory. */
AE__ALWAYS_INLINE size_t pick_neighbours(const ae_index *idx, const hnsw *h, hbuild *b,
                                         hsync *sy, const float *q, uint32_t ep, float epd,
                                         size_t efc, uint32_t l, size_t *nt)
{
    *nt = search_layer_insert(idx, h, q, ep, epd, efc, l, &b->s, sy, b->copy);
    if (*nt == 0) return 0;
    memcpy(b->sorted, b->s.top, *nt * sizeof(ae__nb));
    qsort(b->sorted, *nt, sizeof(ae__nb), cmp_nb);
    return heuristic(idx, b->sorted, *nt, h->m, b->chosen);
}

/* Links node i into the graph; sy: the locks of a threaded insert, or NULL.
 * The same calls in the same order give the same graph with or without sy. */
AE__HOT static ae_status insert(const ae_index *idx, hnsw *h, hbuild *b, hsync *sy, uint32_t i,
                                size_t efc)
{
    const float *q = hvec(idx, i);
    uint32_t lvl = h->levels[i], ep, top, entry;
    ae_status st = AE_OK;
    float epd;
    if (sy) pthread_mutex_lock(&sy->top);
    top = h->max_level;
    ep = entry = h->entry;
    if (sy && lvl <= top) pthread_mutex_unlock(&sy->top); /* else held to the end */
    epd = ae__l2sq(q, hvec(idx, ep), idx->sdim);
    for (uint32_t l = top; l > lvl; l--) ep = greedy(idx, h, sy, b->copy, q, ep, &epd, l);
    for (uint32_t l = lvl < top ? lvl : top;; l--) {
        size_t nt, ns = pick_neighbours(idx, h, b, sy, q, ep, epd, efc, l, &nt);
        uint32_t *lk = hlinks(h, i, l);
        if (nt == 0) {
            st = AE_ERR_NOMEM;
            break;
        }
        node_lock(sy, i);
        for (size_t j = 0; j < ns; j++) link_set(lk, 1 + j, b->chosen[j].r);
        link_set_count(lk, (uint32_t)ns);
        node_unlock(sy, i);
        if (sy) atomic_store_explicit(&sy->ready[i], (unsigned char)l, memory_order_release);
        if (l > 0) { /* the closest found that may be entered on the next layer down */
            size_t j = 0;
            while (j < nt && !ready_at(sy, b->sorted[j].r, l - 1)) j++;
            if (j < nt) {
                ep = b->sorted[j].r;
                epd = b->sorted[j].d;
            } else if (!ready_at(sy, ep, l - 1)) { /* every one still being inserted */
                ep = entry;
                epd = ae__l2sq(q, hvec(idx, ep), idx->sdim);
            }
        }
        /* from chosen, not lk: other threads may already be changing i's list */
        for (size_t j = 0; j < ns; j++)
            add_link(idx, h, b, sy, b->chosen[j].r, i, b->chosen[j].d, l);
        if (l == 0) break;
    }
    if (st == AE_OK && lvl > top) {
        h->max_level = lvl;
        h->entry = i;
    }
    if (sy && lvl > top) pthread_mutex_unlock(&sy->top);
    return st;
}

static void hnsw_free(ae_index *idx)
{
    hnsw *h = idx->state;
    if (!h) return;
    ae__free(h->levels, h->cap);
    ae__free(h->upper_off, h->cap * sizeof(uint64_t));
    if (!h->borrowed) {
        ae__free(h->links0, h->cap * (1 + (size_t)h->m0) * sizeof(uint32_t));
        ae__free(h->upper, h->upper_cap * sizeof(uint32_t));
    }
    ae__free(h, sizeof *h);
    idx->state = NULL;
}

/* Creates the state with m links per upper layer; the graph arrays are
 * allocated by the caller. */
static hnsw *hnsw_new(ae_index *idx, uint32_t m)
{
    hnsw *h = ae__calloc(1, sizeof *h);
    if (!h) return NULL;
    h->cap = idx->n;
    h->m = m;
    h->m0 = 2 * m;
    idx->state = h;
    return h;
}

/* Level of a new node: floor(-ln(u) / ln(M)), u uniform in (0, 1]. */
static uint32_t draw_level(ae__rng *rng, double mult)
{
    double u = ((double)(ae__rng_next(rng) >> 11) + 1.0) * 0x1.0p-53; /* (0, 1] */
    double l = floor(-log(u) * mult);
    return l > MAX_LEVEL ? MAX_LEVEL : (uint32_t)l;
}

/* On failure the caller still calls hbuild_free. */
static ae_status hbuild_init(hbuild *b, size_t n, size_t efc, size_t m)
{
    memset(b, 0, sizeof *b);
    b->cap = (efc > 2 * m + 1 ? efc : 2 * m + 1) + 1;
    b->copy_cap = 1 + 2 * m;
    b->sorted = ae__malloc(b->cap * sizeof(ae__nb));
    b->sel = ae__malloc(b->cap * sizeof(ae__nb));
    b->chosen = ae__malloc(b->cap * sizeof(ae__nb));
    b->copy = ae__malloc(b->copy_cap * sizeof(uint32_t));
    if (scratch_init(&b->s, n, efc) != AE_OK || !b->sorted || !b->sel || !b->chosen || !b->copy)
        return AE_ERR_NOMEM;
    return AE_OK;
}

static void hbuild_free(hbuild *b)
{
    scratch_free(&b->s);
    ae__free(b->sorted, b->cap * sizeof(ae__nb));
    ae__free(b->sel, b->cap * sizeof(ae__nb));
    ae__free(b->chosen, b->cap * sizeof(ae__nb));
    ae__free(b->copy, b->copy_cap * sizeof(uint32_t));
    memset(b, 0, sizeof *b);
}

/* A threaded insert of rows [next, end): the threads of a pool take rows
 * one at a time (inserts differ widely in cost, so a static split would
 * leave threads idle). */
typedef struct hjob {
    const ae_index *idx;
    hnsw *h;
    hbuild *b; /* per thread */
    hsync *sy;
    size_t efc, end;
    atomic_size_t next;
    atomic_int failed;
} hjob;

static void insert_task(void *ctx, int t, int nt)
{
    hjob *j = ctx;
    (void)nt;
    while (!atomic_load_explicit(&j->failed, memory_order_relaxed)) {
        size_t i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (i >= j->end) break;
        if (insert(j->idx, j->h, &j->b[t], j->sy, (uint32_t)i, j->efc) != AE_OK)
            atomic_store(&j->failed, 1);
    }
}

/* What inserting rows [from, n) needs, allocated once for all of them
 * before the graph changes: per-thread scratch, and for more than one thread
 * the node locks and the pool. */
typedef struct hinserter {
    size_t nthreads, n, efc;
    hbuild *b;
    hsync sy;
    ae__pool *pool;
    uint64_t *reached; /* reconnect: a bit per node; NULL when it is not run */
    uint32_t *queue;   /* reconnect: the walk's frontier, n entries */
} hinserter;

/* reconnect runs after inserting at least 1/RECONNECT_SHARE of the graph's
 * nodes (always after a build): its walk reads every layer-0 list, so after
 * one code added to 70,225 it took 13.6 ms against 0.5 ms for the insert
 * (M 16, ef_construction 200, 2 threads). Below that share, nodes left
 * unreachable wait for a later large add or rebuild, whose walk covers the
 * whole graph. */
#define RECONNECT_SHARE 256

static void inserter_free(hinserter *ins)
{
    ae__pool_free(ins->pool);
    if (ins->b)
        for (size_t t = 0; t < ins->nthreads; t++) hbuild_free(&ins->b[t]);
    ae__free(ins->b, ins->nthreads * sizeof *ins->b);
    if (ins->sy.nodes) pthread_mutex_destroy(&ins->sy.top);
    ae__free(ins->sy.node, ins->sy.nodes * sizeof *ins->sy.node);
    ae__free(ins->sy.ready, ins->sy.nodes * sizeof *ins->sy.ready);
    ae__free(ins->reached, (ins->n + 63) / 64 * sizeof(uint64_t));
    ae__free(ins->queue, ins->n * sizeof(uint32_t));
    memset(ins, 0, sizeof *ins);
}

/* For rows [from, n) of a graph of m links per upper layer, on
 * AE_INDEX_THREADS threads (at most one per row). Returns AE_OK or
 * AE_ERR_NOMEM without setting a message; on failure ins holds nothing. */
static ae_status inserter_init(hinserter *ins, const ae_index *idx, size_t m, size_t from,
                               size_t n)
{
    size_t rows = n - from;
    memset(ins, 0, sizeof *ins);
    ins->n = n;
    ins->efc = (size_t)idx->params[AE_INDEX_HNSW_EF_CONSTRUCTION];
    ins->nthreads = (size_t)idx->params[AE_INDEX_THREADS];
    if (ins->nthreads > rows) ins->nthreads = rows > 0 ? rows : 1;
    ins->b = ae__calloc(ins->nthreads, sizeof *ins->b);
    if (!ins->b) goto nomem;
    for (size_t t = 0; t < ins->nthreads; t++)
        if (hbuild_init(&ins->b[t], n, ins->efc, m) != AE_OK) goto nomem;
    if (rows * RECONNECT_SHARE >= n) {
        ins->reached = ae__malloc((n + 63) / 64 * sizeof(uint64_t));
        ins->queue = ae__malloc(n * sizeof(uint32_t));
        if (!ins->reached || !ins->queue) goto nomem;
    }
    if (ins->nthreads > 1) {
        ins->sy.nodes = n;
        pthread_mutex_init(&ins->sy.top, NULL);
        ins->sy.node = ae__malloc(n * sizeof *ins->sy.node);
        ins->sy.ready = ae__malloc(n * sizeof *ins->sy.ready);
        if (!ins->sy.node || !ins->sy.ready) goto nomem;
        for (size_t i = 0; i < n; i++) {
            atomic_init(&ins->sy.node[i], 0);
            /* rows before from are in the graph; levels[from..n) are drawn
             * by the time inserter_run starts (it sets them) */
            atomic_init(&ins->sy.ready[i], 0);
        }
        if (ae__pool_create(&ins->pool, (int)ins->nthreads) != AE_OK) goto nomem;
    }
    return AE_OK;
nomem:
    inserter_free(ins);
    return AE_ERR_NOMEM;
}

/* Inserts rows [from, ins->n) into the graph (levels and list offsets set,
 * lists zeroed): one thread inserts them in row order; more take them from
 * an atomic counter. Returns AE_OK or AE_ERR_NOMEM. */
static ae_status insert_all(hinserter *ins, const ae_index *idx, hnsw *h, size_t from)
{
    ae_status st = AE_OK;
    hjob job;
    if (ins->nthreads == 1) {
        for (size_t i = from; i < ins->n && st == AE_OK; i++)
            st = insert(idx, h, &ins->b[0], NULL, (uint32_t)i, ins->efc);
        return st;
    }
    for (size_t i = from; i < ins->n; i++)
        atomic_store_explicit(&ins->sy.ready[i], (unsigned char)(h->levels[i] + 1),
                              memory_order_relaxed);
    job.idx = idx;
    job.h = h;
    job.b = ins->b;
    job.sy = &ins->sy;
    job.efc = ins->efc;
    job.end = ins->n;
    atomic_init(&job.next, from);
    atomic_init(&job.failed, 0);
    ae__pool_run(ins->pool, insert_task, &job);
    return atomic_load(&job.failed) ? AE_ERR_NOMEM : AE_OK;
}

static inline int is_marked(const uint64_t *bits, uint32_t r)
{
    return (int)(bits[r >> 6] >> (r & 63)) & 1;
}

static inline void mark(uint64_t *bits, uint32_t r)
{
    bits[r >> 6] |= (uint64_t)1 << (r & 63);
}

/* Marks every node that layer 0 leads to from the nodes in queue[0..tail)
 * (already marked in reached); returns the new tail. */
static size_t mark_reached(const hnsw *h, uint64_t *reached, uint32_t *queue, size_t tail)
{
    for (size_t head = 0; head < tail; head++) {
        const uint32_t *lk = hlinks(h, queue[head], 0);
        for (uint32_t j = 1; j <= lk[0]; j++) {
            if (is_marked(reached, lk[j])) continue;
            mark(reached, lk[j]);
            queue[tail++] = lk[j];
        }
    }
    return tail;
}

/* Whether node e's layer-0 list holds u. */
static int links_to(const hnsw *h, uint32_t e, uint32_t u)
{
    const uint32_t *lk = hlinks(h, e, 0);
    for (uint32_t j = 1; j <= lk[0]; j++)
        if (lk[j] == u) return 1;
    return 0;
}

/* Links every node that no layer-0 walk from the entry reaches. The
 * heuristic can drop a node from every list that held it (hnswlib's graphs
 * have such nodes too), and concurrent inserts drop more: nodes inserted
 * side by side pick each other and are then pruned from the lists of the
 * rest (measured, 1,200 clustered 16-d codes, M 12: 12 of 300 builds on 3
 * threads left 1 to 15 nodes that no search could return; 2 of 200 on 2
 * threads, 1 node each; none of 20 on 1 thread). Each such node gets the
 * reverse links of an insert again (knowhere's graph repair): a search
 * for it from a node the entry reaches, so that all it finds is reachable,
 * and a link to it from each neighbour the heuristic picks (a full list
 * shrinks by the heuristic, which may drop it again). Every node of an
 * island gets its own links: one link into an island of 16 left 16 codes
 * that an ef-10 search for themselves missed. Serial, after the inserts;
 * when nothing is unreachable, a walk of layer 0 (n (1 + 2M) reads).
 * Returns AE_OK or AE_ERR_NOMEM. */
static ae_status reconnect(hinserter *ins, const ae_index *idx, hnsw *h)
{
    hbuild *b = &ins->b[0];
    size_t n = ins->n, nreached;
    uint64_t *reached = ins->reached;
    memset(reached, 0, (n + 63) / 64 * sizeof(uint64_t));
    mark(reached, h->entry);
    ins->queue[0] = h->entry;
    nreached = mark_reached(h, reached, ins->queue, 1);
    for (uint32_t u = 0; nreached < n && u < n; u++) {
        const float *q = hvec(idx, u);
        uint32_t ep = h->entry;
        float epd = ae__l2sq(q, hvec(idx, ep), idx->sdim);
        size_t nt, ns;
        int linked = 0;
        if (is_marked(reached, u)) continue;
        for (uint32_t l = h->max_level; l > 0; l--) ep = greedy(idx, h, NULL, NULL, q, ep, &epd, l);
        if (!is_marked(reached, ep)) { /* an upper layer led off */
            ep = h->entry;
            epd = ae__l2sq(q, hvec(idx, ep), idx->sdim);
        }
        ns = pick_neighbours(idx, h, b, NULL, q, ep, epd, ins->efc, 0, &nt);
        if (nt == 0) return AE_ERR_NOMEM;
        for (size_t j = 0; j < ns; j++) {
            add_link(idx, h, b, NULL, b->chosen[j].r, u, b->chosen[j].d, 0);
            linked |= links_to(h, b->chosen[j].r, u);
        }
        if (linked) { /* marked only once reachable: later searches start at marks */
            mark(reached, u);
            nreached++;
        }
    }
    return AE_OK;
}

/* insert_all, then reconnect when inserter_init reserved it; AE_OK or
 * AE_ERR_NOMEM without a message. */
static ae_status inserter_run(hinserter *ins, const ae_index *idx, hnsw *h, size_t from)
{
    ae_status st = insert_all(ins, idx, h, from);
    return st == AE_OK && ins->reached ? reconnect(ins, idx, h) : st;
}

static ae_status hnsw_build(ae_index *idx)
{
    size_t n = idx->n, m = (size_t)idx->params[AE_INDEX_HNSW_M];
    size_t upper = 0;
    double mult = 1.0 / log((double)m);
    ae__rng rng;
    hinserter ins;
    ae_status st;
    hnsw *h = hnsw_new(idx, (uint32_t)m);

    if (!h) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    h->levels = ae__malloc(n);
    h->upper_off = ae__malloc(n * sizeof(uint64_t));
    h->links0 = ae__calloc(n, (1 + 2 * m) * sizeof(uint32_t));
    if (!h->levels || !h->upper_off || !h->links0)
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the HNSW graph");
    ae__rng_seed(&rng, (uint64_t)idx->params[AE_INDEX_SEED]);
    for (size_t i = 0; i < n; i++) {
        uint32_t lv = draw_level(&rng, mult);
        h->levels[i] = (uint8_t)lv;
        h->upper_off[i] = upper;
        upper += (size_t)lv * (1 + m);
    }
    h->upper_len = h->upper_cap = upper;
    if (upper) {
        h->upper = ae__calloc(upper, sizeof(uint32_t));
        if (!h->upper)
            return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the HNSW graph");
    }
    h->entry = 0;
    h->max_level = h->levels[0];
    if (n == 1) return AE_OK;
    if (inserter_init(&ins, idx, m, 1, n) != AE_OK)
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the HNSW build");
    st = inserter_run(&ins, idx, h, 1);
    inserter_free(&ins);
    if (st != AE_OK) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory in the HNSW build");
    return AE_OK;
}

/* Grows the node arrays to idx->cap nodes and upper to at least `upper`
 * entries; on failure the graph is unchanged. */
static ae_status grow_graph(ae_index *idx, hnsw *h, size_t upper)
{
    size_t c = h->cap, nc = idx->cap, row = (1 + (size_t)h->m0) * sizeof(uint32_t);
    if (nc > c) {
        uint8_t *lv = ae__malloc(nc);
        uint32_t *l0 = ae__malloc(nc * row);
        uint64_t *off = ae__malloc(nc * sizeof(uint64_t));
        if (!lv || !l0 || !off) {
            ae__free(lv, nc);
            ae__free(l0, nc * row);
            ae__free(off, nc * sizeof(uint64_t));
            return AE_ERR_NOMEM;
        }
        memcpy(lv, h->levels, c);
        memcpy(l0, h->links0, c * row);
        memcpy(off, h->upper_off, c * sizeof(uint64_t));
        ae__free(h->levels, c);
        ae__free(h->links0, c * row);
        ae__free(h->upper_off, c * sizeof(uint64_t));
        h->levels = lv;
        h->links0 = l0;
        h->upper_off = off;
        h->cap = nc;
    }
    if (upper > h->upper_cap) {
        size_t ncap = h->upper_cap + h->upper_cap / 2 > upper ? h->upper_cap + h->upper_cap / 2
                                                              : upper;
        uint32_t *p = ae__realloc(h->upper, h->upper_cap * sizeof(uint32_t),
                                  ncap * sizeof(uint32_t));
        if (!p) return AE_ERR_NOMEM;
        h->upper = p;
        h->upper_cap = ncap;
    }
    return AE_OK;
}

/* Inserts rows [from, n) into the graph as the build does. */
static ae_status hnsw_add(ae_index *idx, size_t from, int *covered, int *rebuild)
{
    hnsw *h = idx->state;
    size_t n = idx->n, m = h->m;
    size_t upper = h->upper_len, row = 1 + (size_t)h->m0;
    double mult = 1.0 / log((double)m);
    hinserter ins;
    ae_status st;
    *covered = 0;
    *rebuild = 0;
    /* levels first (a generator per node: the same calls give the same graph) */
    for (size_t i = from; i < n; i++) {
        ae__rng rng;
        ae__rng_seed(&rng, (uint64_t)idx->params[AE_INDEX_SEED] ^
                               (0x9E3779B97F4A7C15ull * (uint64_t)(i + 1)));
        upper += (size_t)draw_level(&rng, mult) * (1 + m);
    }
    if (inserter_init(&ins, idx, m, from, n) != AE_OK)
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the HNSW insert");
    if (grow_graph(idx, h, upper) != AE_OK) {
        inserter_free(&ins);
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the HNSW graph");
    }
    /* from here on the graph holds the new nodes, linked or not */
    *covered = 1;
    upper = h->upper_len;
    for (size_t i = from; i < n; i++) {
        ae__rng rng;
        ae__rng_seed(&rng, (uint64_t)idx->params[AE_INDEX_SEED] ^
                               (0x9E3779B97F4A7C15ull * (uint64_t)(i + 1)));
        h->levels[i] = (uint8_t)draw_level(&rng, mult);
        h->upper_off[i] = upper;
        upper += (size_t)h->levels[i] * (1 + m);
        memset(h->links0 + i * row, 0, row * sizeof(uint32_t));
    }
    if (upper > h->upper_len) /* upper is NULL while no node has an upper layer */
        memset(h->upper + h->upper_len, 0, (upper - h->upper_len) * sizeof(uint32_t));
    h->upper_len = upper;
    st = inserter_run(&ins, idx, h, from);
    inserter_free(&ins);
    if (st != AE_OK) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory in the HNSW insert");
    return AE_OK;
}

static ae_status hnsw_search(const ae_index *idx, const float *q, size_t nq, size_t k,
                             size_t ef, const ae__sel *sel, float *dist, int64_t *ids)
{
    const hnsw *h = idx->state;
    size_t n = idx->n, d = idx->sdim;
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
        uint32_t ep = h->entry;
        float epd = ae__l2sq(qi, hvec(idx, ep), d);
        size_t nt, nf = k;
        for (uint32_t l = h->max_level; l > 0; l--)
            ep = greedy(idx, h, NULL, NULL, qi, ep, &epd, l);
        nt = sel ? search_layer_sel(idx, h, qi, ep, epd, ef, sel, &s)
                 : search_layer(idx, h, qi, ep, epd, ef, 0, &s);
        if (nt == 0 && !sel) nt = SIZE_MAX;
        if (nt == SIZE_MAX) {
            st = ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
            goto done;
        }
        if (nt < k) /* disconnected graph or a selective filter: exact answer */
            nf = ae__idx_exact_scan(idx, qi, k, sel, res);
        else
            ae__idx_order(idx, s.top, nt, res);
        ae__idx_emit(idx, qi, res, nf, k, dist ? dist + i * k : NULL, ids + i * k);
    }
done:
    scratch_free(&s);
    ae__free(res, res_cap * sizeof *res);
    return st;
}

/* ---- files: the section body is
 *   u32 max_level, u32 entry, u8 levels[n], (version 4: zeros up to a
 *   multiple of 4 bytes), u32 links0[n][1 + 2M], u32 upper[sum of levels][1 + M]
 * (docs/formats-index.md); the padding keeps the link lists 4-byte aligned
 * for a mapped file. */
static size_t levels_bytes(size_t n, uint32_t version)
{
    return version >= 4 ? (n + 3) & ~(size_t)3 : n;
}

/* Saves write the current format version (4, lib/index.c). */
#define SAVE_VERSION 4u

static size_t hnsw_file_bytes(const ae_index *idx)
{
    const hnsw *h = idx->state;
    return 8 + levels_bytes(idx->n, SAVE_VERSION) + idx->n * (1 + (size_t)h->m0) * 4 +
           h->upper_len * 4;
}

static void hnsw_save(const ae_index *idx, ae__writer *w)
{
    static const unsigned char zeros[4] = {0};
    const hnsw *h = idx->state;
    ae__writer_u32(w, h->max_level);
    ae__writer_u32(w, h->entry);
    ae__writer_write(w, h->levels, idx->n);
    ae__writer_write(w, zeros, levels_bytes(idx->n, SAVE_VERSION) - idx->n);
    ae__writer_write(w, h->links0, idx->n * (1 + (size_t)h->m0) * 4);
    ae__writer_write(w, h->upper, h->upper_len * 4);
}

/* Borrowed (a mapped file): the link lists stay in the file, the levels and
 * list offsets are built in the heap. The upper layers (a few percent of the
 * links) are always checked; layer 0 only by the full check, else by the
 * search as it goes (search_layer). */
static ae_status hnsw_load(ae_index *idx, const ae__index_src *src)
{
    size_t n = idx->n, upper = 0, row0, len = src->len, lvb = levels_bytes(n, src->version);
    uint32_t max_level, entry, m = (uint32_t)idx->params[AE_INDEX_HNSW_M];
    const unsigned char *body = src->body;
    const char *path = src->path;
    ae__reader rd = {body, len, 0, 0};
    const unsigned char *lv;
    hnsw *h;

    row0 = (1 + 2 * (size_t)m) * 4; /* bytes of one layer-0 list */
    if (ae__reader_u32(&rd, &max_level) || ae__reader_u32(&rd, &entry)) goto inconsistent;
    if (len - 8 < lvb || (len - 8 - lvb) / row0 < n) goto inconsistent;
    lv = body + 8; /* the levels, read in place to size the upper layers */
    for (size_t i = 0; i < n; i++) {
        if (lv[i] > MAX_LEVEL || lv[i] > max_level)
            return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a bad HNSW level", path);
        upper += lv[i];
    }
    for (size_t i = n; i < lvb; i++)
        if (lv[i]) goto inconsistent;
    if (max_level > MAX_LEVEL || entry >= n || lv[entry] != max_level)
        return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a bad HNSW entry point", path);
    /* upper <= 48 n: no overflow */
    if (len - 8 - lvb - n * row0 != upper * (1 + (size_t)m) * 4) goto inconsistent;

    if (!(h = hnsw_new(idx, m))) return ae__fail(NULL, AE_ERR_NOMEM, "out of memory");
    h->max_level = max_level;
    h->entry = entry;
    h->borrowed = src->borrow;
    h->levels = ae__malloc(n);
    h->upper_off = ae__malloc(n * sizeof(uint64_t));
    h->upper_len = h->upper_cap = upper * (1 + (size_t)m);
    if (src->borrow) { /* 4-byte aligned in format 4; read-only */
        h->links0 = (uint32_t *)(uintptr_t)(body + 8 + lvb);
        if (upper) h->upper = (uint32_t *)(uintptr_t)(body + 8 + lvb + n * row0);
    } else {
        h->links0 = ae__malloc(n * row0);
        if (upper) h->upper = ae__malloc(h->upper_len * 4);
    }
    if (!h->levels || !h->links0 || !h->upper_off || (upper && !h->upper))
        return ae__fail(NULL, AE_ERR_NOMEM, "out of memory for the HNSW graph");
    ae__reader_bytes(&rd, h->levels, n);
    rd.pos = 8 + lvb;
    if (!src->borrow) {
        ae__reader_bytes(&rd, h->links0, n * row0);
        ae__reader_bytes(&rd, h->upper, h->upper_len * 4);
    }
    upper = 0;
    for (size_t i = 0; i < n; i++) {
        h->upper_off[i] = upper;
        upper += (size_t)h->levels[i] * (1 + m);
    }
    for (size_t i = 0; i < n; i++) {
        for (uint32_t l = src->full ? 0 : 1; l <= h->levels[i]; l++) {
            const uint32_t *lk = hlinks(h, (uint32_t)i, l);
            uint32_t cnt = lk[0], cap = l == 0 ? h->m0 : h->m;
            if (cnt > cap) goto bad_graph;
            for (uint32_t j = 1; j <= cnt; j++)
                if (lk[j] >= n || h->levels[lk[j]] < l) goto bad_graph;
        }
        if (src->release && src->full)
            ae__map_release_read((const unsigned char *)h->links0, row0, i);
    }
    return AE_OK;
bad_graph:
    return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has a corrupt HNSW graph", path);
inconsistent:
    return ae__fail(NULL, AE_ERR_FORMAT, "'%s' has an HNSW section of the wrong size "
                    "(%zu bytes)", path, len);
}

static size_t hnsw_memory_bytes(const ae_index *idx)
{
    const hnsw *h = idx->state;
    if (!h) return 0;
    if (h->borrowed) return sizeof *h + h->cap * (1 + sizeof(uint64_t));
    return sizeof *h + h->cap * (1 + sizeof(uint64_t) + (1 + (size_t)h->m0) * sizeof(uint32_t)) +
           h->upper_cap * sizeof(uint32_t);
}

const ae__index_ops ae__index_ops_hnsw = {
    .backend = AE_INDEX_HNSW,
    .name = "hnsw",
    .params = 1u << AE_INDEX_HNSW_M | 1u << AE_INDEX_HNSW_EF_CONSTRUCTION |
              1u << AE_INDEX_HNSW_EF_SEARCH | 1u << AE_INDEX_SEED | 1u << AE_INDEX_THREADS,
    .file_section = 17u,
    .build = hnsw_build,
    .search = hnsw_search,
    .add = hnsw_add,
    .pending = NULL,
    .file_bytes = hnsw_file_bytes,
    .save = hnsw_save,
    .load = hnsw_load,
    .free_state = hnsw_free,
    .memory_bytes = hnsw_memory_bytes,
};
