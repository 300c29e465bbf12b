/* panbench.analysis._boundary: the per-pixel part of boundary PQ (Cheng et al. 2021), in C.
 *
 *   boundary_counts(gt_ids, pred_ids, width, height, gt_keys, pred_keys, d, bint, bg_area, bp_area)
 *       -> None | (1, id)
 *   gt_ids, pred_ids: uint32 id maps (height x width).  gt_keys / pred_keys: int64 segment ids in
 *   segments_info order.  A pixel is on its segment's boundary when a pixel of another id, or the
 *   outside of the image, is within Chebyshev distance d (boundary-iou-api's mask minus its
 *   d-times 3x3 erosion inside a zero frame).  Writes, with rows/columns as pair_counts
 *   (0 = VOID, 1..n = segments, ground-truth row n_gt + 1 = ids in no segment):
 *     bint   (n_gt + 2) x (n_pred + 1) int64: pixels on a predicted boundary and on a ground-truth
 *            boundary, or on ground-truth VOID (row 0);
 *     bg_area (n_gt + 2), bp_area (n_pred + 1) int64: boundary pixels of each segment.
 *   Returns (1, id) for a predicted pixel id in no segment, else None.  Releases the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef struct {
    uint32_t *keys;
    int32_t *vals;
    uint32_t mask;
} idmap;

static inline uint32_t hash32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static int idmap_init(idmap *m, const int64_t *ids, Py_ssize_t n) {
    uint32_t size = 16;
    while (size < 2 * (uint32_t)n + 2) size <<= 1;
    m->mask = size - 1;
    m->keys = calloc(size, sizeof(uint32_t));
    m->vals = calloc(size, sizeof(int32_t));
    if (!m->keys || !m->vals) return -1;
    for (Py_ssize_t k = 0; k < n; k++) {
        uint32_t key = (uint32_t)ids[k], s = hash32(key) & m->mask;
        if (key == 0) continue;
        while (m->keys[s] && m->keys[s] != key) s = (s + 1) & m->mask;
        m->keys[s] = key;
        m->vals[s] = (int32_t)(k + 1);
    }
    return 0;
}

static inline int32_t idmap_get(const idmap *m, uint32_t key) {
    if (key == 0) return 0;
    uint32_t s = hash32(key) & m->mask;
    while (m->keys[s]) {
        if (m->keys[s] == key) return m->vals[s];
        s = (s + 1) & m->mask;
    }
    return -1;
}

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

/* the same for two arrays at once: (g[i], p[i]) != (cg, cp) */
static inline Py_ssize_t run_end2(const uint32_t *g, const uint32_t *p, Py_ssize_t from, Py_ssize_t n, uint32_t cg,
                                  uint32_t cp) {
    Py_ssize_t i = from;
#ifdef __SSE2__
    __m128i vg = _mm_set1_epi32((int)cg), vp = _mm_set1_epi32((int)cp);
    for (; i + 4 <= n; i += 4) {
        __m128i eq = _mm_and_si128(_mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(g + i)), vg),
                                   _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(p + i)), vp));
        int m = _mm_movemask_ps(_mm_castsi128_ps(eq));
        if (m != 0xF) return i + __builtin_ctz(~m & 0xF);
    }
#endif
    while (i < n && g[i] == cg && p[i] == cp) i++;
    return i;
}

/* Row windows: o[x] = 1 where the run of equal ids around x extends d pixels both ways. */
static void inner_row(const uint32_t *r, Py_ssize_t w, int d, uint8_t *o) {
    Py_ssize_t s = 0;
    while (s < w) {
        Py_ssize_t e = run_end1(r, s + 1, w, r[s]) - 1; /* the run is [s, e] */
        Py_ssize_t lo = s + d, hi = e - d; /* interior x in [lo, hi] */
        memset(o + s, 0, (size_t)(e - s + 1));
        if (lo <= hi) memset(o + lo, 1, (size_t)(hi - lo + 1));
        s = e + 1;
    }
}

/* up[x]: rows ending at row y (r) in which the pixel has a clean row window and the same id as
 * the row below, saturating at 2d + 1.  Pixel (y - d, x) is interior iff up[x] == 2d + 1. */
static void up_row(const uint32_t *restrict r, const uint32_t *restrict ra, const uint8_t *restrict in, uint16_t *restrict up,
                   Py_ssize_t w, uint16_t full, int first) {
    if (first) {
        for (Py_ssize_t x = 0; x < w; x++) up[x] = in[x];
        return;
    }
    Py_ssize_t x = 0;
#ifdef __SSE2__
    const __m128i vfull = _mm_set1_epi16((short)full), one = _mm_set1_epi16(1), zero = _mm_setzero_si128();
    for (; x + 8 <= w; x += 8) { /* counts stay <= 2d + 1 < 2^15: signed 16-bit compares are exact */
        __m128i u = _mm_loadu_si128((const __m128i *)(up + x));
        __m128i s0 = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(r + x)), _mm_loadu_si128((const __m128i *)(ra + x)));
        __m128i s1 = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(r + x + 4)),
                                     _mm_loadu_si128((const __m128i *)(ra + x + 4)));
        __m128i same = _mm_packs_epi32(s0, s1);
        __m128i inc = _mm_sub_epi16(u, _mm_cmplt_epi16(u, vfull));
        __m128i v = _mm_or_si128(_mm_and_si128(same, inc), _mm_andnot_si128(same, one));
        __m128i inb = _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(in + x)), zero);
        _mm_storeu_si128((__m128i *)(up + x), _mm_and_si128(v, _mm_cmpgt_epi16(inb, zero)));
    }
#endif
    for (; x < w; x++) { /* branch-free */
        uint16_t u = up[x];
        uint16_t same = (uint16_t)-(uint16_t)(r[x] == ra[x]);
        uint16_t v = (uint16_t)(((u + (u < full)) & same) | (1 & ~same));
        up[x] = v & (uint16_t)-(uint16_t)in[x];
    }
}

typedef struct {
    const idmap *m;
    uint32_t last;
    int32_t li, unknown;
} lookup;

static inline int32_t look(lookup *l, uint32_t v) {
    if (v != l->last) {
        int32_t k = idmap_get(l->m, v);
        l->li = k < 0 ? l->unknown : k;
        l->last = v;
    }
    return l->li;
}

/* Tally row y: boundary flags from the up counts (NULL: the whole row is boundary); per run of
 * equal (gt, pred) ids, the counts of gt-boundary, pred-boundary and both-boundary pixels. */
static int tally_row(const uint32_t *g, const uint32_t *p, const uint16_t *ug, const uint16_t *up, uint16_t full,
                     Py_ssize_t w, uint8_t *fl, lookup *lg, lookup *lp, int64_t *bint, int64_t *bga, int64_t *bpa,
                     Py_ssize_t cols, uint32_t *bad) {
    if (ug) { /* bit 0: gt boundary, bit 1: pred boundary */
        Py_ssize_t x = 0;
#ifdef __SSE2__
        const __m128i vfull = _mm_set1_epi16((short)full), b1 = _mm_set1_epi8(1), b2 = _mm_set1_epi8(2);
        for (; x + 16 <= w; x += 16) {
            __m128i g0 = _mm_cmplt_epi16(_mm_loadu_si128((const __m128i *)(ug + x)), vfull);
            __m128i g1 = _mm_cmplt_epi16(_mm_loadu_si128((const __m128i *)(ug + x + 8)), vfull);
            __m128i p0 = _mm_cmplt_epi16(_mm_loadu_si128((const __m128i *)(up + x)), vfull);
            __m128i p1 = _mm_cmplt_epi16(_mm_loadu_si128((const __m128i *)(up + x + 8)), vfull);
            __m128i f = _mm_or_si128(_mm_and_si128(_mm_packs_epi16(g0, g1), b1), _mm_and_si128(_mm_packs_epi16(p0, p1), b2));
            _mm_storeu_si128((__m128i *)(fl + x), f);
        }
#endif
        for (; x < w; x++) fl[x] = (uint8_t)((ug[x] < full) | ((up[x] < full) << 1));
    } else {
        memset(fl, 3, (size_t)w);
    }
    Py_ssize_t x = 0;
    while (x < w) {
        uint32_t gv = g[x], pv = p[x];
        Py_ssize_t e = run_end2(g, p, x + 1, w, gv, pv);
        int64_t cg = 0, cp = 0, cb = 0;
        for (Py_ssize_t i = x; i < e; i++) {
            uint8_t f = fl[i];
            cg += f & 1;
            cp += f >> 1;
            cb += f == 3;
        }
        if (cg | cp) {
            int32_t a = look(lg, gv), b = look(lp, pv);
            if (b < 0) { *bad = pv; return 1; }
            bga[a] += cg;
            bpa[b] += cp;
            bint[a * cols + b] += a == 0 ? cp : cb;
        }
        x = e;
    }
    return 0;
}

static int boundary_pass(const uint32_t *g, const uint32_t *p, Py_ssize_t w, Py_ssize_t h, int d, lookup *lg,
                         lookup *lp, int64_t *bint, int64_t *bga, int64_t *bpa, Py_ssize_t cols, uint8_t *buf,
                         uint32_t *bad) {
    const uint16_t full = (uint16_t)(2 * d + 1);
    uint8_t *ig = buf, *ip = buf + w;
    uint16_t *ug = (uint16_t *)(buf + 2 * w + 16 - ((uintptr_t)(buf + 2 * w) % 16)), *up = ug + w;
    uint8_t *fl = (uint8_t *)(up + w);
    for (Py_ssize_t y = 0; y < h; y++) {
        const uint32_t *gr = g + y * w, *pr = p + y * w;
        inner_row(gr, w, d, ig);
        inner_row(pr, w, d, ip);
        up_row(gr, gr - (y ? w : 0), ig, ug, w, full, y == 0);
        up_row(pr, pr - (y ? w : 0), ip, up, w, full, y == 0);
        if (y >= 2 * d) { /* row y - d is decided: interior iff its column window reaches row y */
            Py_ssize_t t = y - d;
            if (tally_row(g + t * w, p + t * w, ug, up, full, w, fl, lg, lp, bint, bga, bpa, cols, bad)) return 1;
        }
    }
    for (Py_ssize_t t = 0; t < h; t++) { /* rows within d of the top or bottom border: all boundary */
        if (t >= d && t < h - d && h >= 2 * d + 1) continue;
        if (tally_row(g + t * w, p + t * w, NULL, NULL, full, w, fl, lg, lp, bint, bga, bpa, cols, bad)) return 1;
    }
    return 0;
}

static PyObject *py_boundary_counts(PyObject *self, PyObject *args) {
    Py_buffer g, p, gk, pk, bi, ga, pa;
    Py_ssize_t w, h;
    int d;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nny*y*iw*w*w*", &g, &p, &w, &h, &gk, &pk, &d, &bi, &ga, &pa)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = w * h, n_gt = gk.len / 8, n_pred = pk.len / 8, cols = n_pred + 1;
    if (w < 0 || h < 0 || g.len != n * 4 || p.len != n * 4) {
        PyErr_SetString(PyExc_ValueError, "boundary_counts: id maps must be uint32 height x width");
    } else if (gk.len % 8 || pk.len % 8 || d < 1 || d > 16000) {
        PyErr_SetString(PyExc_ValueError, "boundary_counts: keys must be int64 and 1 <= d <= 16000");
    } else if (bi.len != (n_gt + 2) * cols * 8 || ga.len != (n_gt + 2) * 8 || pa.len != cols * 8) {
        PyErr_SetString(PyExc_ValueError, "boundary_counts: output arrays have the wrong sizes");
    } else {
        idmap gm = {0}, pm = {0};
        uint8_t *buf = malloc(7 * (size_t)w + 64);
        if (!buf || idmap_init(&gm, gk.buf, n_gt) || idmap_init(&pm, pk.buf, n_pred)) {
            PyErr_NoMemory();
        } else {
            uint32_t bad = 0;
            int rc = 0;
            Py_BEGIN_ALLOW_THREADS
            lookup lg = {&gm, 0, 0, (int32_t)(n_gt + 1)}, lp = {&pm, 0, 0, -1};
            memset(bi.buf, 0, (size_t)bi.len);
            memset(ga.buf, 0, (size_t)ga.len);
            memset(pa.buf, 0, (size_t)pa.len);
            if (n > 0)
                rc = boundary_pass(g.buf, p.buf, w, h, d, &lg, &lp, bi.buf, ga.buf, pa.buf, cols, buf, &bad);
            Py_END_ALLOW_THREADS
            result = rc ? Py_BuildValue("(iI)", 1, bad) : Py_NewRef(Py_None);
        }
        free(gm.keys);
        free(gm.vals);
        free(pm.keys);
        free(pm.vals);
        free(buf);
    }
    PyBuffer_Release(&g);
    PyBuffer_Release(&p);
    PyBuffer_Release(&gk);
    PyBuffer_Release(&pk);
    PyBuffer_Release(&bi);
    PyBuffer_Release(&ga);
    PyBuffer_Release(&pa);
    return result;
}

static PyMethodDef methods[] = {
    {"boundary_counts", py_boundary_counts, METH_VARARGS, "Boundary pixel counts of (gt, pred) segment pairs."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_boundary", "Boundary PQ's per-pixel loops in C.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__boundary(void) { return PyModule_Create(&module); }
