/* The per-pixel part of boundary PQ (Cheng et al. 2021) in C, without Python objects: _boundary.c wraps it for
 * Python (boundary_counts), _native.c runs it on its threads (pair_tables with boundary PQ, the GIL released).
 *
 * pb_boundary_pass: one pass over the rows of both id maps, each pixel read once, that counts the boundary
 * pixels of every segment of both maps at once (the bands of all the image's segments): a row's runs of equal ids
 * (AVX2 where the CPU has it); per column, the first row of its current streak of clean windows (updated per
 * stretch of two runs, written only where a streak starts or breaks); the boundary bits of row y - d from the
 * streaks; per run of equal (gt, pred) ids, popcounts of the bits.  Work space (pb_bwork): the runs of the last
 * min(d + 1, height) rows of each map, and O(width).  The tables it writes are described in _boundary.c.
 */
#ifndef PANBENCH_BOUNDARY_CORE_H
#define PANBENCH_BOUNDARY_CORE_H

#include "_common.h" /* the id table and the AVX2 switch */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* the first i >= from with r[i] != v, or n; SSE2 compares 4 pixels at a time */
static inline Py_ssize_t run_end1(const uint32_t *r, Py_ssize_t from, Py_ssize_t n, uint32_t v) {
    Py_ssize_t i = from;
#ifdef __SSE2__
    __m128i vv = _mm_set1_epi32((int)v);
    for (; i + 4 <= n; i += 4) {
        int m = _mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(r + i)), vv)));
        if (m != 0xF) return i + __builtin_ctz(~m & 0xF);
    }
#endif
    while (i < n && r[i] == v) i++;
    return i;
}

/* The runs of equal ids of one row: run k is [start[k], start[k + 1]) with id val[k]; start[n] = w. */
typedef struct {
    Py_ssize_t *start;
    uint32_t *val;
    Py_ssize_t n;
} runs;

#if PB_AVX2
/* The same with AVX2: 8 pixels compared with their left neighbours at a time, the run starts
 * taken from the mask of changes (chosen at import where the CPU has AVX2). */
__attribute__((target("avx2"))) static void row_runs_avx2(const uint32_t *r, Py_ssize_t w, runs *o) {
    Py_ssize_t n = 0, x = 1;
    if (w > 0) {
        o->start[n] = 0;
        o->val[n++] = r[0];
    }
    for (; x + 8 <= w; x += 8) {
        __m256i eq = _mm256_cmpeq_epi32(_mm256_loadu_si256((const __m256i *)(r + x)),
                                        _mm256_loadu_si256((const __m256i *)(r + x - 1)));
        unsigned m = ~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(eq)) & 0xFFu;
        while (m) {
            Py_ssize_t i = x + __builtin_ctz(m);
            o->start[n] = i;
            o->val[n++] = r[i];
            m &= m - 1;
        }
    }
    for (; x < w; x++)
        if (r[x] != r[x - 1]) {
            o->start[n] = x;
            o->val[n++] = r[x];
        }
    o->start[n] = w > 0 ? w : 0;
    o->n = n;
}
#else
static void row_runs_avx2(const uint32_t *r, Py_ssize_t w, runs *o) { (void)r, (void)w, (void)o; }
#endif

static void row_runs(const uint32_t *r, Py_ssize_t w, runs *o) {
    if (pb_have_avx2) {
        row_runs_avx2(r, w, o);
        return;
    }
    Py_ssize_t s = 0, n = 0;
    while (s < w) {
        o->start[n] = s;
        o->val[n++] = r[s];
        s = run_end1(r, s + 1, w, r[s]);
    }
    o->start[n] = w;
    o->n = n;
}

static inline void fill32(int32_t *u, Py_ssize_t a, Py_ssize_t b, int32_t v) {
    for (Py_ssize_t x = a; x < b; x++) u[x] = v;
}

/* Column streaks after row y (runs c; the row above: runs p, unless first): st[x] = the first row of
 * the streak of rows ending at y in which pixel x has a clean row window (its run extends d pixels
 * both ways) and, but for the streak's first row, the id of the row above; y + 1 when its window
 * at row y is not clean.  Pixel (y - d, x) is interior iff st[x] <= y - 2d.  Along a stretch where
 * both rows are one run each, "same id as above" is one test; a streak that goes on is not written. */
static void streak_update(int32_t *st, const runs *c, const runs *p, int first, int d, int32_t y) {
    Py_ssize_t j = 0;
    for (Py_ssize_t k = 0; k < c->n; k++) {
        Py_ssize_t s = c->start[k], e = c->start[k + 1], lo = s + d, hi = e - d; /* clean windows: [lo, hi) */
        if (lo >= hi) {
            fill32(st, s, e, y + 1);
            continue;
        }
        fill32(st, s, lo, y + 1);
        fill32(st, hi, e, y + 1);
        if (first) {
            fill32(st, lo, hi, y);
            continue;
        }
        while (p->start[j + 1] <= lo) j++;
        for (Py_ssize_t a = lo; a < hi;) {
            Py_ssize_t b = p->start[j + 1] < hi ? p->start[j + 1] : hi;
            if (p->val[j] != c->val[k]) fill32(st, a, b, y);
            a = b;
            if (a < hi) j++;
        }
    }
}

/* bits[x / 64] bit x % 64 = 1 where st[x] > thr (a boundary pixel); bits past w are 0 */
static void make_bits(const int32_t *st, Py_ssize_t w, int32_t thr, uint64_t *bits) {
    Py_ssize_t x = 0;
#ifdef __SSE2__
    const __m128i vt = _mm_set1_epi32(thr);
    for (; x + 64 <= w; x += 64) {
        uint64_t word = 0;
        for (int q = 0; q < 4; q++) {
            const __m128i *v = (const __m128i *)(st + x + 16 * q);
            __m128i c0 = _mm_cmpgt_epi32(_mm_loadu_si128(v), vt), c1 = _mm_cmpgt_epi32(_mm_loadu_si128(v + 1), vt);
            __m128i c2 = _mm_cmpgt_epi32(_mm_loadu_si128(v + 2), vt), c3 = _mm_cmpgt_epi32(_mm_loadu_si128(v + 3), vt);
            __m128i m = _mm_packs_epi16(_mm_packs_epi32(c0, c1), _mm_packs_epi32(c2, c3));
            word |= (uint64_t)(uint16_t)_mm_movemask_epi8(m) << (16 * q);
        }
        bits[x >> 6] = word;
    }
#endif
    for (; x < w; x += 64) {
        uint64_t word = 0;
        for (Py_ssize_t i = x; i < w && i < x + 64; i++) word |= (uint64_t)(st[i] > thr) << (i - x);
        bits[x >> 6] = word;
    }
}

static inline int64_t pc64(uint64_t v) { /* SWAR popcount: no -mpopcnt needed */
    v = v - ((v >> 1) & 0x5555555555555555ULL);
    v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
    v = (v + (v >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (int64_t)((v * 0x0101010101010101ULL) >> 56);
}

/* set bits of a (and of b, unless NULL) in [x, e), x < e */
static inline int64_t count_bits(const uint64_t *a, const uint64_t *b, Py_ssize_t x, Py_ssize_t e) {
    Py_ssize_t wx = x >> 6, we = (e - 1) >> 6;
    uint64_t first = ~0ULL << (x & 63), last = ~0ULL >> (63 - ((e - 1) & 63));
    if (wx == we) return pc64(a[wx] & (b ? b[wx] : ~0ULL) & first & last);
    int64_t c = pc64(a[wx] & (b ? b[wx] : ~0ULL) & first) + pc64(a[we] & (b ? b[we] : ~0ULL) & last);
    if (b)
        for (Py_ssize_t k = wx + 1; k < we; k++) c += pc64(a[k] & b[k]);
    else
        for (Py_ssize_t k = wx + 1; k < we; k++) c += pc64(a[k]);
    return c;
}

typedef struct {
    const pb_idmap *m;
    uint32_t last;
    int32_t li, unknown;
} lookup;

static inline int32_t look(lookup *l, uint32_t v) {
    if (v != l->last) {
        int32_t k = pb_idmap_get(l->m, v);
        l->li = k < 0 ? l->unknown : k;
        l->last = v;
    }
    return l->li;
}

static inline int tally_run(uint32_t gv, uint32_t pv, Py_ssize_t x, Py_ssize_t e, const uint64_t *bg,
                            const uint64_t *bp, lookup *lg, lookup *lp, int64_t *bint, int64_t *bga, int64_t *bpa,
                            Py_ssize_t cols, int64_t *inter, uint32_t *bad) {
    int64_t cg = e - x, cp = e - x;
    if (bg) {
        cg = count_bits(bg, NULL, x, e);
        cp = count_bits(bp, NULL, x, e);
    }
    if (cg | cp || inter) {
        int32_t a = look(lg, gv), b = look(lp, pv);
        if (b < 0) {
            *bad = pv;
            return 1;
        }
        if (inter) inter[a * cols + b] += e - x; /* the mask's pair counts, as pair_counts counts them */
        bga[a] += cg;
        bpa[b] += cp;
        if (a == 0) bint[b] += cp;
        else if (cg && cp) bint[a * cols + b] += bg ? count_bits(bg, bp, x, e) : e - x;
    }
    return 0;
}

/* Tally a row given as its runs of gt ids and of pred ids: per run of equal (gt, pred) ids (the
 * runs merged), the counts of gt-boundary, pred-boundary and both-boundary pixels (bits: boundary
 * pixels of the row, NULL: the whole row is boundary) and, with inter, of all its pixels. */
static int tally_runs(const runs *rg, const runs *rp, const uint64_t *bg, const uint64_t *bp, lookup *lg,
                      lookup *lp, int64_t *bint, int64_t *bga, int64_t *bpa, Py_ssize_t cols, int64_t *inter,
                      uint32_t *bad) {
    Py_ssize_t i = 0, j = 0, x = 0, w = rg->start[rg->n];
    while (x < w) {
        Py_ssize_t eg = rg->start[i + 1], ep = rp->start[j + 1], e = eg < ep ? eg : ep;
        if (tally_run(rg->val[i], rp->val[j], x, e, bg, bp, lg, lp, bint, bga, bpa, cols, inter, bad)) return 1;
        x = e;
        i += eg == e;
        j += ep == e;
    }
    return 0;
}

/* Work space: column counts, boundary bits, and the runs of the last R = min(d + 1, h) rows of each
 * map (row t's runs are tallied d rows later), in slots t % R. */
typedef struct {
    int32_t *sg, *sp;
    uint64_t *bg, *bp;
    Py_ssize_t R;
    runs *rg, *rp;
    int64_t *inter; /* NULL, or the (G + 2) x (P + 1) pair counts the pass adds too (zeroed by the caller) */
} pb_bwork;

static int pb_bwork_init(pb_bwork *k, Py_ssize_t w, Py_ssize_t h, int d) {
    size_t nw = (size_t)(w + 63) / 64 + 1;
    memset(k, 0, sizeof(*k));
    k->R = (Py_ssize_t)d + 1 < h ? (Py_ssize_t)d + 1 : (h > 0 ? h : 1);
    k->sg = malloc(2 * (size_t)w * sizeof(int32_t) + 16);
    k->bg = calloc(2 * nw, sizeof(uint64_t));
    k->rg = calloc(2 * (size_t)k->R, sizeof(runs));
    if (!k->sg || !k->bg || !k->rg) return -1;
    k->sp = k->sg + w;
    k->bp = k->bg + nw;
    k->rp = k->rg + k->R;
    for (Py_ssize_t i = 0; i < 2 * k->R; i++) {
        k->rg[i].start = malloc(((size_t)w + 1) * sizeof(Py_ssize_t));
        k->rg[i].val = malloc(((size_t)w + 1) * sizeof(uint32_t));
        if (!k->rg[i].start || !k->rg[i].val) return -1;
    }
    return 0;
}

static void pb_bwork_free(pb_bwork *k) {
    free(k->sg);
    free(k->bg);
    if (k->rg)
        for (Py_ssize_t i = 0; i < 2 * k->R; i++) {
            free(k->rg[i].start);
            free(k->rg[i].val);
        }
    free(k->rg);
}

/* The state of one pass (pb_boundary_start): the maps' size and d, the id lookups, the tables it adds to */
typedef struct {
    Py_ssize_t w, h, cols;
    int d;
    lookup *lg, *lp;
    int64_t *bint, *bga, *bpa;
    uint32_t bad; /* a predicted id in no segment, once a row returned 1 */
} pb_bpass;

/* Row y of both maps (rows 0, 1, ... in turn, each read once: the caller may overwrite it afterwards): its runs
 * kept, the whole row tallied where it lies within d of the top or bottom, the column streaks updated, and row
 * y - d tallied once it is decided.  Returns 0, or 1 for a predicted id in no segment (in b->bad). */
static inline int pb_boundary_row(pb_bwork *k, pb_bpass *b, const uint32_t *grow, const uint32_t *prow,
                                  Py_ssize_t y) {
    const Py_ssize_t R = k->R, D = b->d, h = b->h, w = b->w;
    Py_ssize_t s = y % R, s1 = (y + R - 1) % R;
    row_runs(grow, w, &k->rg[s]);
    row_runs(prow, w, &k->rp[s]);
    if (y < D || y >= h - D) { /* within d of the top or bottom border: the whole row is boundary */
        if (tally_runs(&k->rg[s], &k->rp[s], NULL, NULL, b->lg, b->lp, b->bint, b->bga, b->bpa, b->cols, k->inter,
                       &b->bad))
            return 1;
    }
    streak_update(k->sg, &k->rg[s], &k->rg[s1], y == 0, b->d, (int32_t)y);
    streak_update(k->sp, &k->rp[s], &k->rp[s1], y == 0, b->d, (int32_t)y);
    if (y >= 2 * D && y - D < h - D) { /* row y - d is decided: interior iff its column window reaches row y */
        Py_ssize_t t = (y - D) % R;
        make_bits(k->sg, w, (int32_t)(y - 2 * D), k->bg);
        make_bits(k->sp, w, (int32_t)(y - 2 * D), k->bp);
        if (tally_runs(&k->rg[t], &k->rp[t], k->bg, k->bp, b->lg, b->lp, b->bint, b->bga, b->bpa, b->cols, k->inter,
                       &b->bad))
            return 1;
    }
    return 0;
}

#endif
