/* panbench.pq._native: the two per-pixel loops of PQ scoring, in C.
 *
 *   unfilter_ids(raw, width, height, channels, out)
 *       PNG scanlines (inflated IDAT of an 8-bit RGB/RGBA, non-interlaced image) -> segment ids
 *       R + 256 G + 256^2 B as uint32, written to `out` (height * width uint32).
 *   pair_counts(gt_ids, pred_ids, gt_keys, pred_keys, counts, strict_gt=1) -> None | (side, id)
 *       Pixel counts of (ground-truth segment, predicted segment) pairs into `counts`
 *       ((n_gt + 2) x (n_pred + 1) int64, row/column 0 = VOID, the layout of pq.matching.match_image).
 *       Returns (1, id) for a predicted pixel id that is in no segment and, with strict_gt, (0, id)
 *       for such a ground-truth id (the caller raises the error), else None.  Without strict_gt a
 *       ground-truth id in no segment is counted in row n_gt + 1 (panopticapi scores such pixels).
 *
 * Both release the GIL.  Everything else (PNG chunks, inflate, validation, matching) is Python.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The row loops are compiled twice, for AVX2 and for baseline x86-64, and the loader picks one
 * (GCC function multi-versioning); other compilers and CPUs get the portable build. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define PB_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define PB_CLONES
#endif

static inline int paeth(int a, int b, int c) {
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    int bc = pb <= pc ? b : c; /* written as selects: the compiler emits cmov, no branches */
    return (pa <= pb && pa <= pc) ? a : bc;
}

static inline uint32_t load32(const uint8_t *p) { /* p[0..3] readable: rows carry 4 bytes of padding */
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* a pixel of the (unpadded) inflated data: never reads past its last byte */
static inline uint32_t load_src(const uint8_t *p, const int BPP) {
    return BPP == 4 ? load32(p) : (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
}

static inline void store32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

#if defined(__x86_64__) && defined(__GNUC__)
#include <tmmintrin.h>
/* RGB -> ids, 4 pixels per byte shuffle; needs c[0 .. 3w + 3] readable (rows carry padding) */
__attribute__((target("ssse3"))) static Py_ssize_t to_ids3_ssse3(const uint8_t *c, uint32_t *o, Py_ssize_t w) {
    const __m128i shuf = _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
    Py_ssize_t x = 0;
    for (; x + 4 <= w && 3 * x + 16 <= 3 * w + 4; x += 4)
        _mm_storeu_si128((__m128i *)(o + x), _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(c + 3 * x)), shuf));
    return x;
}
static int have_ssse3;
#define PB_SSSE3_INIT() (have_ssse3 = __builtin_cpu_supports("ssse3"))
#else
static const int have_ssse3 = 0;
static Py_ssize_t to_ids3_ssse3(const uint8_t *c, uint32_t *o, Py_ssize_t w) { return 0; }
#define PB_SSSE3_INIT() 0
#endif

static inline void to_ids(const uint8_t *restrict c, uint32_t *restrict o, Py_ssize_t w, const int BPP) {
    Py_ssize_t x = BPP == 3 && have_ssse3 ? to_ids3_ssse3(c, o, w) : 0;
    for (; x < w; x++)
        o[x] = (uint32_t)c[x * BPP] | ((uint32_t)c[x * BPP + 1] << 8) | ((uint32_t)c[x * BPP + 2] << 16);
}

/* One scanline of 8-bit pixels with BPP (3 or 4) bytes, written to cur and, as ids, to out.
 * Pixels travel packed in a uint32 (the left pixel stays in a register: a store-to-load round
 * trip per byte costs 4-5 cycles).  Panoptic PNGs are mostly flat: a zero delta where the row
 * above is flat (b == c) makes Paeth predict the left pixel, with no per-byte arithmetic. */
static inline int unfilter_row(int ft, const uint8_t *src, const uint8_t *prev, uint8_t *cur, uint32_t *out,
                               Py_ssize_t w, const int BPP) {
    const uint32_t mask = BPP == 3 ? 0xFFFFFFu : 0xFFFFFFFFu;
    Py_ssize_t stride = w * BPP, i, x;
    switch (ft) {
    case 0:
    case 2:
        if (ft == 0)
            memcpy(cur, src, (size_t)stride);
        else
            for (i = 0; i < stride; i++) cur[i] = (uint8_t)(src[i] + prev[i]);
        to_ids(cur, out, w, BPP);
        return 0;
    case 1: {
        uint8_t a[4] = {0, 0, 0, 0};
        for (x = 0; x < w; x++) {
            for (int k = 0; k < BPP; k++) cur[x * BPP + k] = a[k] = (uint8_t)(src[x * BPP + k] + a[k]);
            out[x] = (uint32_t)a[0] | ((uint32_t)a[1] << 8) | ((uint32_t)a[2] << 16);
        }
        return 0;
    }
    case 3: {
        uint8_t a[4] = {0, 0, 0, 0};
        for (x = 0; x < w; x++) {
            for (int k = 0; k < BPP; k++)
                cur[x * BPP + k] = a[k] = (uint8_t)(src[x * BPP + k] + ((a[k] + prev[x * BPP + k]) >> 1));
            out[x] = (uint32_t)a[0] | ((uint32_t)a[1] << 8) | ((uint32_t)a[2] << 16);
        }
        return 0;
    }
    case 4: {
        uint32_t a = 0, c = 0;
        for (x = 0; x < w; x++) {
            uint32_t d = load_src(src + x * BPP, BPP), b = load32(prev + x * BPP) & mask;
            if (d != 0 || b != c) {
                uint32_t r = 0;
                for (int k = 0; k < BPP; k++) {
                    int sh = 8 * k;
                    int pred = paeth((a >> sh) & 0xFF, (b >> sh) & 0xFF, (c >> sh) & 0xFF);
                    r |= (uint32_t)((pred + (int)((d >> sh) & 0xFF)) & 0xFF) << sh;
                }
                a = r;
            }
            store32(cur + x * BPP, a);
            out[x] = a & 0xFFFFFFu;
            c = b;
        }
        return 0;
    }
    default:
        return ft + 1;
    }
}

/* returns 0, or the offending filter type + 1 */
static PB_CLONES int unfilter(const uint8_t *raw, Py_ssize_t w, Py_ssize_t h, int bpp, uint8_t *rows, uint32_t *out) {
    Py_ssize_t stride = w * bpp;
    uint8_t *prev = rows, *cur = rows + stride + 4;
    memset(rows, 0, (size_t)(2 * (stride + 4)));
    for (Py_ssize_t y = 0; y < h; y++) {
        const uint8_t *src = raw + y * (stride + 1);
        int bad = bpp == 3 ? unfilter_row(src[0], src + 1, prev, cur, out + y * w, w, 3)
                           : unfilter_row(src[0], src + 1, prev, cur, out + y * w, w, 4);
        if (bad) return bad;
        uint8_t *t = prev;
        prev = cur;
        cur = t;
    }
    return 0;
}

static PyObject *py_unfilter_ids(PyObject *self, PyObject *args) {
    Py_buffer raw, out;
    Py_ssize_t w, h;
    int ch;
    if (!PyArg_ParseTuple(args, "y*nniw*", &raw, &w, &h, &ch, &out)) return NULL;
    PyObject *result = NULL;
    if ((ch != 3 && ch != 4) || w <= 0 || h <= 0) {
        PyErr_SetString(PyExc_ValueError, "unfilter_ids: need width, height > 0 and 3 or 4 channels");
    } else if (raw.len != h * (w * ch + 1)) {
        PyErr_Format(PyExc_ValueError, "image data has %zd bytes, expected %zd", raw.len, h * (w * ch + 1));
    } else if (out.len != h * w * 4) {
        PyErr_SetString(PyExc_ValueError, "unfilter_ids: out must hold height * width uint32");
    } else {
        uint8_t *rows = malloc((size_t)(2 * (w * ch + 4)));
        if (!rows) {
            PyErr_NoMemory();
        } else {
            int bad;
            Py_BEGIN_ALLOW_THREADS
            bad = unfilter(raw.buf, w, h, ch, rows, out.buf);
            Py_END_ALLOW_THREADS
            free(rows);
            if (bad)
                PyErr_Format(PyExc_ValueError, "unknown PNG filter type %d", bad - 1);
            else
                result = Py_NewRef(Py_None);
        }
    }
    PyBuffer_Release(&raw);
    PyBuffer_Release(&out);
    return result;
}

/* open addressing: uint32 id -> index (1..n); 0 is VOID and never stored */
typedef struct {
    uint32_t *keys;
    int32_t *vals;
    uint32_t mask;
} idmap;

static inline uint32_t hash32(uint32_t x) { return (x * 2654435761u) >> 7; }

static int idmap_init(idmap *m, const int64_t *keys, Py_ssize_t n) {
    uint32_t size = 16;
    while (size < 4 * (uint64_t)n) size <<= 1;
    m->keys = calloc(size, sizeof(uint32_t));
    m->vals = malloc(size * sizeof(int32_t));
    m->mask = size - 1;
    if (!m->keys || !m->vals) return -1;
    for (Py_ssize_t k = 0; k < n; k++) {
        uint32_t key = (uint32_t)keys[k], s = hash32(key) & m->mask;
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

/* the first i >= from where (g[i], p[i]) != (cg, cp), or n; SSE2 compares 4 pixels at a time */
static inline Py_ssize_t run_end(const uint32_t *g, const uint32_t *p, Py_ssize_t from, Py_ssize_t n, uint32_t cg,
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

/* returns 0, 1 (unknown gt id in *bad, with strict_gt) or 2 (unknown pred id in *bad); without strict_gt an
 * unknown gt id goes to row unlisted_row */
static int count_pairs(const uint32_t *g, const uint32_t *p, Py_ssize_t n, const idmap *gm, const idmap *pm,
                       int64_t *counts, Py_ssize_t cols, uint32_t *bad, int strict_gt, int32_t unlisted_row) {
    Py_ssize_t i = 0;
    uint32_t lg = 0, lp = 0; /* the last ids looked up (0 = VOID -> index 0): at a run break usually */
    int32_t gi = 0, pi = 0;  /* only one side changes */
    while (i < n) {
        uint32_t cg = g[i], cp = p[i];
        Py_ssize_t j = run_end(g, p, i + 1, n, cg, cp);
        if (cg != lg) {
            if ((gi = idmap_get(gm, cg)) < 0) {
                if (strict_gt) { *bad = cg; return 1; }
                gi = unlisted_row;
            }
            lg = cg;
        }
        if (cp != lp) {
            if ((pi = idmap_get(pm, cp)) < 0) { *bad = cp; return 2; }
            lp = cp;
        }
        counts[gi * cols + pi] += j - i;
        i = j;
    }
    return 0;
}

static PyObject *py_pair_counts(PyObject *self, PyObject *args) {
    Py_buffer g, p, gk, pk, c;
    int strict_gt = 1;
    if (!PyArg_ParseTuple(args, "y*y*y*y*w*|p", &g, &p, &gk, &pk, &c, &strict_gt)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n_gt = gk.len / 8, n_pred = pk.len / 8, cols = n_pred + 1;
    if (g.len != p.len || g.len % 4) {
        PyErr_SetString(PyExc_ValueError, "pair_counts: id maps must be uint32 of the same size");
    } else if (gk.len % 8 || pk.len % 8) {
        PyErr_SetString(PyExc_ValueError, "pair_counts: keys must be int64");
    } else if (c.len != (n_gt + 2) * cols * 8) {
        PyErr_SetString(PyExc_ValueError, "pair_counts: counts must be (n_gt + 2) x (n_pred + 1) int64");
    } else {
        idmap gm = {0}, pm = {0};
        if (idmap_init(&gm, gk.buf, n_gt) || idmap_init(&pm, pk.buf, n_pred)) {
            PyErr_NoMemory();
        } else {
            int rc;
            uint32_t bad = 0;
            Py_BEGIN_ALLOW_THREADS
            memset(c.buf, 0, (size_t)c.len);
            rc = count_pairs(g.buf, p.buf, g.len / 4, &gm, &pm, c.buf, cols, &bad, strict_gt, (int32_t)(n_gt + 1));
            Py_END_ALLOW_THREADS
            result = rc ? Py_BuildValue("(iI)", rc - 1, bad) : Py_NewRef(Py_None);
        }
        free(gm.keys);
        free(gm.vals);
        free(pm.keys);
        free(pm.vals);
    }
    PyBuffer_Release(&g);
    PyBuffer_Release(&p);
    PyBuffer_Release(&gk);
    PyBuffer_Release(&pk);
    PyBuffer_Release(&c);
    return result;
}

static PyMethodDef methods[] = {
    {"unfilter_ids", py_unfilter_ids, METH_VARARGS, "PNG scanlines -> uint32 segment ids (in place into out)."},
    {"pair_counts", py_pair_counts, METH_VARARGS, "Pixel counts of (gt, pred) segment pairs into counts."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "panbench's per-pixel loops in C.", -1, methods};

PyMODINIT_FUNC PyInit__native(void) {
    PB_SSSE3_INIT();
    return PyModule_Create(&module);
}
