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
 *   use_avx2(flag) -> bool
 *       The tests switch the AVX2 loops (pair_counts; None, Up and Paeth rows) off and on; the others
 *       give the same numbers.
 *
 *   use_libdeflate(alloc, free, zlib_decompress, crc32)
 *       The addresses of libdeflate's libdeflate_alloc_decompressor, libdeflate_free_decompressor,
 *       libdeflate_zlib_decompress and libdeflate_crc32 (the deflate package exports them); pair_tables
 *       needs them.  panbench.pq.batch hands them over.
 *   pair_tables(items, max_pixels) -> bytes
 *       The batch path of `panbench score`: for each item (gt_path, pred_path, height, width, gt_keys,
 *       pred_keys, counts, strict_gt[, gt_cats, gt_areas, gt_crowd, pred_cats, res[, boundary[, pred_scores]]])
 *       both PNG files read, checked as panbench.pq.png checks them, inflated, unfiltered to ids and counted into
 *       `counts` as pair_counts counts them and, with gt_cats to res, the table matched as _match matches it (the
 *       area checks, the match with pred_scores' float64 scores (absent: NaN), the semantic fold: _match_core.h)
 *       into `res` (int64; its layout at match_one), all with the GIL
 *       released, reusing one set of buffers per thread.  height/width: the size the ground truth must have
 *       (-1: any); the prediction must have the ground truth's.  One status byte per item: 0 counted (and
 *       matched), 1 not (a file missing or damaged, a PNG kind or size this path leaves to Python, an id in no
 *       segment, an area check that fails): the caller scores that image on the per-image path, which gives
 *       the numbers or the error.  With boundary (true), boundary PQ's pass
 *       (_boundary_core.h) runs over the rows of both maps as the prediction is decoded, and the match takes its
 *       boundary tables as well: boundary PQ's contributions (IoU = min(mask IoU, boundary IoU)) follow the fold in
 *       `res`.
 *   decode_ids(paths, max_pixels) -> list
 *       Each file decoded as pair_tables decodes it, its ids summed (None: left to the per-image path).
 *
 * All release the GIL.  Everything else (the JSON, validation messages) is Python.
 */
#include "_common.h" /* the id table and the AVX2 switch */
#include "_match_core.h" /* the match, the area checks and the fold of a counted table */
#include "_boundary_core.h" /* boundary PQ's one pass over both id maps */
#include <math.h>
#include <string.h>
#ifndef _WIN32
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#endif
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* A pixel is kept as its id: R | G << 8 | B << 16 in a uint32 (the top byte 0).  PNG filters work
 * on each byte with the same byte of the left, upper and upper-left pixels, so the three colour
 * bytes unfilter on their own: an RGBA PNG's alpha never reaches them and is dropped, and the row
 * above is read from the ids already written (no byte copy of the image is kept). */
#define PB_RGB 0x00FFFFFFu

/* four bytes added (or averaged, rounding down) byte by byte, without carries between bytes */
static inline uint32_t add8(uint32_t x, uint32_t y) { return ((x & 0x7F7F7F7Fu) + (y & 0x7F7F7F7Fu)) ^ ((x ^ y) & 0x80808080u); }
static inline uint32_t avg8(uint32_t x, uint32_t y) { return (x & y) + (((x ^ y) & 0xFEFEFEFEu) >> 1); }

static inline int paeth(int a, int b, int c) {
    int pa = abs(b - c), pb = abs(a - c), pc = abs(a + b - 2 * c);
    int bc = pb <= pc ? b : c; /* written as selects: the compiler emits cmov, no branches */
    return (pa <= pb && pa <= pc) ? a : bc;
}

static inline uint32_t paeth3(uint32_t a, uint32_t b, uint32_t c) {
    uint32_t r = 0;
    for (int sh = 0; sh < 24; sh += 8)
        r |= (uint32_t)paeth((a >> sh) & 0xFF, (b >> sh) & 0xFF, (c >> sh) & 0xFF) << sh;
    return r;
}

/* the colour bytes of pixel x of a filtered row (never reads past the row's last byte) */
static inline uint32_t src_px(const uint8_t *s, Py_ssize_t x, const int BPP) {
    const uint8_t *p = s + x * BPP;
    if (BPP == 4) {
        uint32_t v;
        memcpy(&v, p, 4);
        return v & PB_RGB;
    }
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16);
}

/* Paeth: pixel 0 of a row (a = c = 0: Paeth predicts the pixel above), and pixel x >= 1 after its left
 * neighbour a (it repeats a where its filtered bytes are 0 and the row above does not change) */
static inline uint32_t paeth_first(const uint8_t *src, const uint32_t *prev, const int BPP) {
    return add8(src_px(src, 0, BPP), prev[0]);
}
static inline uint32_t paeth_px(const uint8_t *src, const uint32_t *prev, Py_ssize_t x, uint32_t a, const int BPP) {
    uint32_t d = src_px(src, x, BPP), b = prev[x], c = prev[x - 1];
    return d != 0 || b != c ? add8(d, paeth3(a, b, c)) : a;
}

#ifdef __SSE2__
/* the colour bytes of pixels x..x+3 are all 0 (needs x * BPP + 16 <= the row's bytes) */
static inline int src_zero4(const uint8_t *s, Py_ssize_t x, const int BPP) {
    __m128i v = _mm_loadu_si128((const __m128i *)(s + x * BPP));
    if (BPP == 4) v = _mm_and_si128(v, _mm_set1_epi32((int)PB_RGB));
    return (_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_setzero_si128())) & (BPP == 4 ? 0xFFFF : 0xFFF)) ==
           (BPP == 4 ? 0xFFFF : 0xFFF);
}
static inline void fill4(uint32_t *o, uint32_t v) { _mm_storeu_si128((__m128i *)o, _mm_set1_epi32((int)v)); }
/* prev[x..x+3] == prev[x-1..x+2] (x >= 1) */
static inline int flat_above4(const uint32_t *prev, Py_ssize_t x) {
    __m128i eq = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(prev + x)),
                                 _mm_loadu_si128((const __m128i *)(prev + x - 1)));
    return _mm_movemask_epi8(eq) == 0xFFFF;
}
#define PB_BLOCKS 1
#else
#define PB_BLOCKS 0
static inline int src_zero4(const uint8_t *s, Py_ssize_t x, const int BPP) { return 0; }
static inline void fill4(uint32_t *o, uint32_t v) {}
static inline int flat_above4(const uint32_t *prev, Py_ssize_t x) { return 0; }
#endif

#if defined(__x86_64__) && defined(__GNUC__)
#include <tmmintrin.h>
/* the colour bytes of pixels x..x+3 as four ids, one byte shuffle (needs x * bpp + 16 <= the row's bytes) */
__attribute__((target("ssse3"))) static inline __m128i ids4_ssse3(const uint8_t *s, Py_ssize_t x, int bpp) {
    const __m128i shuf = bpp == 3 ? _mm_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1)
                                  : _mm_setr_epi8(0, 1, 2, -1, 4, 5, 6, -1, 8, 9, 10, -1, 12, 13, 14, -1);
    return _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(s + x * bpp)), shuf);
}
/* None (up = 0) and Up (up = 1) filters, 4 pixels per byte shuffle; returns the pixels done */
__attribute__((target("ssse3"))) static Py_ssize_t none_up_ssse3(const uint8_t *s, const uint32_t *prev, uint32_t *o,
                                                                 Py_ssize_t w, int bpp, int up) {
    Py_ssize_t x = 0;
    for (; (x + 4) * bpp + (bpp == 3 ? 4 : 0) <= w * bpp; x += 4) {
        __m128i v = ids4_ssse3(s, x, bpp);
        if (up) v = _mm_add_epi8(v, _mm_loadu_si128((const __m128i *)(prev + x)));
        _mm_storeu_si128((__m128i *)(o + x), v);
    }
    return x;
}
/* Sub filter: a running byte-wise sum along the row, 4 pixels at a time (two shifted adds make the
 * block's prefix sums, then the last pixel of the block before is added); no branch per pixel.
 * `a` is the pixel left of the first (updated to the last one done); returns the pixels done. */
__attribute__((target("ssse3"))) static Py_ssize_t sub_ssse3(const uint8_t *s, uint32_t *o, Py_ssize_t w, int bpp,
                                                             uint32_t *a) {
    __m128i carry = _mm_set1_epi32((int)*a);
    Py_ssize_t x = 0;
    for (; (x + 4) * bpp + (bpp == 3 ? 4 : 0) <= w * bpp; x += 4) {
        __m128i v = ids4_ssse3(s, x, bpp);
        v = _mm_add_epi8(v, _mm_slli_si128(v, 4));
        v = _mm_add_epi8(v, _mm_slli_si128(v, 8));
        v = _mm_add_epi8(v, carry);
        _mm_storeu_si128((__m128i *)(o + x), v);
        carry = _mm_shuffle_epi32(v, 0xFF);
    }
    *a = (uint32_t)_mm_cvtsi128_si32(carry);
    return x;
}
static int have_ssse3;
#define PB_SSSE3_INIT() (have_ssse3 = __builtin_cpu_supports("ssse3"))
#else
static const int have_ssse3 = 0;
static Py_ssize_t none_up_ssse3(const uint8_t *s, const uint32_t *prev, uint32_t *o, Py_ssize_t w, int bpp, int up) {
    return 0;
}
static Py_ssize_t sub_ssse3(const uint8_t *s, uint32_t *o, Py_ssize_t w, int bpp, uint32_t *a) { return 0; }
#define PB_SSSE3_INIT() ((void)0)
#endif

#if PB_AVX2
/* the colour bytes of pixels x..x+7 as eight ids (needs x * bpp + 28 (RGB) or + 32 (RGBA) <= the row's
 * bytes): RGB as two 12-byte halves, one per 128-bit lane, each shuffled in its lane */
__attribute__((target("avx2"))) static inline __m256i ids8_avx2(const uint8_t *s, Py_ssize_t x, int bpp) {
    if (bpp == 4)
        return _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(s + 4 * x)), _mm256_set1_epi32((int)PB_RGB));
    const __m256i shuf = _mm256_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1,
                                          0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
    __m128i lo = _mm_loadu_si128((const __m128i *)(s + 3 * x)), hi = _mm_loadu_si128((const __m128i *)(s + 3 * x + 12));
    return _mm256_shuffle_epi8(_mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1), shuf);
}
/* The Paeth row of unfilter_row with AVX2, for BPP (3 or 4) bytes per pixel: eight pixels checked at a time
 * (x < blocks: pixels x..x+7 go as a block; their src bytes, 28 for RGB and 32 for RGBA from x * BPP, lie in the
 * row).  A flat pixel (src bytes 0, the row above equal to its left neighbour there) repeats its left neighbour;
 * a block's other pixels are computed one by one, left to right, each spreading its value over the block's
 * lanes from its own on, and the block is stored once. */
__attribute__((target("avx2"), always_inline)) static inline void paeth_row_avx2_bpp(
    const uint8_t *src, const uint32_t *prev, uint32_t *out, Py_ssize_t w, const int BPP) {
    const Py_ssize_t span = BPP == 3 ? 28 : 32, blocks = w * BPP >= span ? (w * BPP - span) / BPP + 1 : 0;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    uint32_t a = out[0] = paeth_first(src, prev, BPP);
    Py_ssize_t x = 1;
    for (; x < blocks; x += 8) {
        __m256i flat = _mm256_and_si256(_mm256_cmpeq_epi32(ids8_avx2(src, x, BPP), _mm256_setzero_si256()),
                                        _mm256_cmpeq_epi32(_mm256_loadu_si256((const __m256i *)(prev + x)),
                                                           _mm256_loadu_si256((const __m256i *)(prev + x - 1))));
        unsigned other = ~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(flat)) & 0xFFu;
        __m256i v = _mm256_set1_epi32((int)a);
        while (other) { /* the next pixel that is not flat: its left neighbour's value is a */
            int k = __builtin_ctz(other);
            a = paeth_px(src, prev, x + k, a, BPP);
            v = _mm256_blendv_epi8(v, _mm256_set1_epi32((int)a), _mm256_cmpgt_epi32(lane, _mm256_set1_epi32(k - 1)));
            other &= other - 1;
        }
        _mm256_storeu_si256((__m256i *)(out + x), v);
    }
    for (; x < w; x++) out[x] = a = paeth_px(src, prev, x, a, BPP);
}
__attribute__((target("avx2"))) static void paeth_row_avx2(const uint8_t *src, const uint32_t *prev, uint32_t *out,
                                                           Py_ssize_t w, int bpp) {
    if (bpp == 3)
        paeth_row_avx2_bpp(src, prev, out, w, 3);
    else
        paeth_row_avx2_bpp(src, prev, out, w, 4);
}
/* None (up = 0) and Up (up = 1) rows with AVX2, eight pixels per step; returns the pixels done */
__attribute__((target("avx2"))) static Py_ssize_t none_up_avx2(const uint8_t *s, const uint32_t *prev, uint32_t *o,
                                                               Py_ssize_t w, int bpp, int up) {
    Py_ssize_t x = 0;
    for (; x * bpp + (bpp == 3 ? 28 : 32) <= w * bpp; x += 8) {
        __m256i v = ids8_avx2(s, x, bpp);
        if (up) v = _mm256_add_epi8(v, _mm256_loadu_si256((const __m256i *)(prev + x)));
        _mm256_storeu_si256((__m256i *)(o + x), v);
    }
    return x;
}
#else
static void paeth_row_avx2(const uint8_t *src, const uint32_t *prev, uint32_t *out, Py_ssize_t w, int bpp) {}
static Py_ssize_t none_up_avx2(const uint8_t *s, const uint32_t *prev, uint32_t *o, Py_ssize_t w, int bpp, int up) {
    return 0;
}
#endif

/* One scanline: the filtered bytes `src` (BPP = 3 or 4 per pixel) and the row above as ids `prev`
 * -> ids `out`.  None, Up and Sub go four pixels at a time.  Panoptic PNGs are mostly flat: where a
 * Paeth pixel's bytes are 0 and the row above is flat there, the pixel repeats its left neighbour;
 * such pixels go four at a time too. */
static inline int unfilter_row(int ft, const uint8_t *src, const uint32_t *prev, uint32_t *out, Py_ssize_t w,
                               const int BPP) {
    /* x < blocks: pixels x..x+3 may go as a block (their 16 bytes of src lie in the row) */
    Py_ssize_t x = 0, blocks = PB_BLOCKS && w * BPP >= 16 ? (w * BPP - 16) / BPP + 1 : 0;
    uint32_t a = 0;
    switch (ft) {
    case 0:
    case 2:
        if (PB_AVX2 && pb_have_avx2)
            x = none_up_avx2(src, prev, out, w, BPP, ft == 2);
        else if (have_ssse3)
            x = none_up_ssse3(src, prev, out, w, BPP, ft == 2);
        for (; x < w; x++) out[x] = ft == 2 ? add8(src_px(src, x, BPP), prev[x]) : src_px(src, x, BPP);
        return 0;
    case 1:
        if (have_ssse3) x = sub_ssse3(src, out, w, BPP, &a);
        for (; x < w; x++) out[x] = a = add8(a, src_px(src, x, BPP));
        return 0;
    case 3:
        for (; x < w; x++) out[x] = a = add8(src_px(src, x, BPP), avg8(a, prev[x]));
        return 0;
    case 4:
        if (PB_AVX2 && pb_have_avx2) {
            paeth_row_avx2(src, prev, out, w, BPP);
            return 0;
        }
        out[0] = a = paeth_first(src, prev, BPP);
        for (x = 1; x < w;) {
            if (x < blocks && src_zero4(src, x, BPP) && flat_above4(prev, x)) {
                fill4(out + x, a);
                x += 4;
                continue;
            }
            out[x] = a = paeth_px(src, prev, x, a, BPP);
            x++;
        }
        return 0;
    default:
        return ft + 1;
    }
}

/* returns 0, or the offending filter type + 1; `zero` holds w + 4 zero uint32 (the row above the first) */
static int unfilter(const uint8_t *raw, Py_ssize_t w, Py_ssize_t h, int bpp, const uint32_t *zero, uint32_t *out) {
    Py_ssize_t stride = w * bpp;
    for (Py_ssize_t y = 0; y < h; y++) {
        const uint8_t *src = raw + y * (stride + 1);
        const uint32_t *prev = y ? out + (y - 1) * w : zero;
        int bad = bpp == 3 ? unfilter_row(src[0], src + 1, prev, out + y * w, w, 3)
                           : unfilter_row(src[0], src + 1, prev, out + y * w, w, 4);
        if (bad) return bad;
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
        uint32_t *zero = calloc((size_t)w + 4, sizeof(uint32_t));
        if (!zero) {
            PyErr_NoMemory();
        } else {
            int bad;
            Py_BEGIN_ALLOW_THREADS
            bad = unfilter(raw.buf, w, h, ch, zero, out.buf);
            Py_END_ALLOW_THREADS
            free(zero);
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

/* The pair counts are taken run by run: a run is a stretch of pixels (in raster order) with one
 * (ground truth, prediction) id pair.  The pixels are compared with their left neighbours a block
 * at a time (8 with AVX2, 4 with SSE2), and the set bits of the block's mask of changes are the
 * run starts: a block without a change (most of them: runs are tens of pixels long) costs a few
 * instructions and no branch miss. */
typedef struct {
    const pb_idmap *gm, *pm;
    int64_t *counts;
    Py_ssize_t cols;
    int strict_gt;
    int32_t unlisted_row;
    uint32_t lg, lp; /* the last ids looked up (0 = VOID -> index 0): at a run start usually */
    int32_t gi, pi;  /* only one side changes */
    uint32_t bad;
} pair_counter;

/* Add the run of `len` pixels of ids (cg, cp); returns 0, 1 (unknown gt id in c->bad, with strict_gt) or 2
 * (unknown pred id in c->bad); without strict_gt an unknown gt id goes to row unlisted_row. */
static inline int add_run(pair_counter *c, uint32_t cg, uint32_t cp, Py_ssize_t len) {
    if (cg != c->lg) {
        if ((c->gi = pb_idmap_get(c->gm, cg)) < 0) {
            if (c->strict_gt) { c->bad = cg; return 1; }
            c->gi = c->unlisted_row;
        }
        c->lg = cg;
    }
    if (cp != c->lp) {
        if ((c->pi = pb_idmap_get(c->pm, cp)) < 0) { c->bad = cp; return 2; }
        c->lp = cp;
    }
    c->counts[c->gi * c->cols + c->pi] += len;
    return 0;
}

/* the bits of a block: bit k set where pixel i + k differs from pixel i + k - 1 (either map) */
#define PB_RUN_STARTS(mask, i)                                                                              \
    while (mask) {                                                                                         \
        Py_ssize_t j = (i) + __builtin_ctz(mask);                                                          \
        if ((rc = add_run(c, g[s], p[s], j - s))) return rc;                                               \
        s = j;                                                                                             \
        mask &= mask - 1;                                                                                  \
    }

/* the scalar tail from pixel i on (s: the start of the open run); returns add_run's code */
static inline int count_tail(const uint32_t *g, const uint32_t *p, Py_ssize_t s, Py_ssize_t i, Py_ssize_t n,
                             pair_counter *c) {
    int rc;
    for (; i < n; i++)
        if (g[i] != g[i - 1] || p[i] != p[i - 1]) {
            if ((rc = add_run(c, g[s], p[s], i - s))) return rc;
            s = i;
        }
    return add_run(c, g[s], p[s], n - s);
}

#if PB_AVX2
__attribute__((target("avx2"))) static int count_avx2(const uint32_t *g, const uint32_t *p, Py_ssize_t n,
                                                      pair_counter *c) {
    Py_ssize_t s = 0, i = 1;
    int rc;
    for (; i + 8 <= n; i += 8) {
        __m256i eg = _mm256_cmpeq_epi32(_mm256_loadu_si256((const __m256i *)(g + i)),
                                        _mm256_loadu_si256((const __m256i *)(g + i - 1)));
        __m256i ep = _mm256_cmpeq_epi32(_mm256_loadu_si256((const __m256i *)(p + i)),
                                        _mm256_loadu_si256((const __m256i *)(p + i - 1)));
        unsigned m = ~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_and_si256(eg, ep))) & 0xFFu;
        PB_RUN_STARTS(m, i)
    }
    return count_tail(g, p, s, i, n, c);
}
#else
static int count_avx2(const uint32_t *g, const uint32_t *p, Py_ssize_t n, pair_counter *c) { return 0; }
#endif

static int count_portable(const uint32_t *g, const uint32_t *p, Py_ssize_t n, pair_counter *c) {
    Py_ssize_t s = 0, i = 1;
#ifdef __SSE2__
    int rc;
    for (; i + 4 <= n; i += 4) {
        __m128i eg = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(g + i)),
                                     _mm_loadu_si128((const __m128i *)(g + i - 1)));
        __m128i ep = _mm_cmpeq_epi32(_mm_loadu_si128((const __m128i *)(p + i)),
                                     _mm_loadu_si128((const __m128i *)(p + i - 1)));
        unsigned m = ~(unsigned)_mm_movemask_ps(_mm_castsi128_ps(_mm_and_si128(eg, ep))) & 0xFu;
        PB_RUN_STARTS(m, i)
    }
#endif
    return count_tail(g, p, s, i, n, c);
}

/* returns 0, 1 (unknown gt id in *bad, with strict_gt) or 2 (unknown pred id in *bad); without strict_gt an
 * unknown gt id goes to row unlisted_row */
static int count_pairs(const uint32_t *g, const uint32_t *p, Py_ssize_t n, const pb_idmap *gm, const pb_idmap *pm,
                       int64_t *counts, Py_ssize_t cols, uint32_t *bad, int strict_gt, int32_t unlisted_row) {
    pair_counter c = {gm, pm, counts, cols, strict_gt, unlisted_row, 0, 0, 0, 0, 0};
    if (n == 0) return 0;
    int rc = pb_have_avx2 ? count_avx2(g, p, n, &c) : count_portable(g, p, n, &c);
    *bad = c.bad;
    return rc;
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
        pb_idmap gm = {0}, pm = {0};
        if (pb_idmap_init(&gm, gk.buf, n_gt) || pb_idmap_init(&pm, pk.buf, n_pred)) {
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
        pb_idmap_free(&gm);
        pb_idmap_free(&pm);
    }
    PyBuffer_Release(&g);
    PyBuffer_Release(&p);
    PyBuffer_Release(&gk);
    PyBuffer_Release(&pk);
    PyBuffer_Release(&c);
    return result;
}


/* ---- the batch path: files to pair counts, with the GIL released ---- */

typedef void *(*pb_ld_alloc_fn)(void);
typedef void (*pb_ld_free_fn)(void *);
typedef int (*pb_ld_zlib_fn)(void *, const void *, size_t, void *, size_t, size_t *);
typedef uint32_t (*pb_ld_crc_fn)(uint32_t, const void *, size_t);
static pb_ld_alloc_fn ld_alloc;
static pb_ld_free_fn ld_free;
static pb_ld_zlib_fn ld_zlib;
static pb_ld_crc_fn ld_crc;

static PyObject *py_use_libdeflate(PyObject *self, PyObject *args) {
    unsigned long long a, f, z, c;
    if (!PyArg_ParseTuple(args, "KKKK", &a, &f, &z, &c)) return NULL;
    if (!a || !f || !z || !c) {
        PyErr_SetString(PyExc_ValueError, "use_libdeflate: four non-null function addresses expected");
        return NULL;
    }
    ld_alloc = (pb_ld_alloc_fn)(uintptr_t)a;
    ld_free = (pb_ld_free_fn)(uintptr_t)f;
    ld_zlib = (pb_ld_zlib_fn)(uintptr_t)z;
    ld_crc = (pb_ld_crc_fn)(uintptr_t)c;
    return Py_NewRef(Py_None);
}

typedef struct {
    uint8_t *p;
    size_t cap;
} pb_buf;

static int buf_reserve(pb_buf *b, size_t n) {
    if (n <= b->cap) return 0;
    void *q = realloc(b->p, n);
    if (!q) return -1;
    b->p = q;
    b->cap = n;
    return 0;
}

/* a thread's buffers, kept between its calls (a call's images are about the same size) and freed when the thread
 * ends (POSIX: a thread-specific key's destructor; elsewhere at the end of each call); one larger than
 * PB_KEEP_BYTES is freed at the end of the call that grew it */
#define PB_KEEP_BYTES ((size_t)64 << 20)
typedef struct {
    pb_buf file, idat, raw, zero, gt_ids, pred_ids;
} pb_work;

static void work_trim(pb_work *w, size_t keep) {
    pb_buf *all[] = {&w->file, &w->idat, &w->raw, &w->zero, &w->gt_ids, &w->pred_ids};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        if (all[k]->cap > keep) {
            free(all[k]->p);
            all[k]->p = NULL;
            all[k]->cap = 0;
        }
}

#ifndef _WIN32
#include <pthread.h>
static pthread_key_t pb_work_key;
static int pb_work_key_ok;
static void work_free(void *w) {
    work_trim(w, 0);
    free(w);
}
#endif

/* this thread's buffers (NULL when out of memory); work_done after use */
static pb_work *work_get(void) {
#ifndef _WIN32
    if (pb_work_key_ok) {
        pb_work *w = pthread_getspecific(pb_work_key);
        if (!w && (w = calloc(1, sizeof *w)) && pthread_setspecific(pb_work_key, w)) {
            free(w);
            w = NULL;
        }
        return w;
    }
#endif
    return calloc(1, sizeof(pb_work));
}
static void work_done(pb_work *w) {
    if (!w) return;
#ifndef _WIN32
    if (pb_work_key_ok) {
        work_trim(w, PB_KEEP_BYTES);
        return;
    }
#endif
    work_trim(w, 0);
    free(w);
}

/* the whole file into b; returns its size, or -1 */
static Py_ssize_t read_file(const char *path, pb_buf *b) {
    size_t n = 0;
#ifndef _WIN32
    int fd = open(path, O_RDONLY | O_NONBLOCK);  /* a FIFO opens without a writer, then is refused below */
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { close(fd); return -1; }  /* the per-image path names it */
    size_t hint = st.st_size > 0 ? (size_t)st.st_size : 0;
    if (buf_reserve(b, hint + 1)) { close(fd); return -1; }
    for (;;) {
        if (n == b->cap && buf_reserve(b, 2 * b->cap)) { close(fd); return -1; }
        ssize_t got = read(fd, b->p + n, b->cap - n);
        if (got < 0) { close(fd); return -1; }
        if (got == 0) break;
        n += (size_t)got;
    }
    close(fd);
#else
    FILE *fh = fopen(path, "rb");
    if (!fh) return -1;
    if (buf_reserve(b, 1 << 16)) { fclose(fh); return -1; }
    for (;;) {
        if (n == b->cap && buf_reserve(b, 2 * b->cap)) { fclose(fh); return -1; }
        size_t got = fread(b->p + n, 1, b->cap - n, fh);
        n += got;
        if (got == 0) break;
    }
    int err = ferror(fh);
    fclose(fh);
    if (err) return -1;
#endif
    return (Py_ssize_t)n;
}

static inline uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The PNG in d[0:n] checked as panbench.pq.png checks it (signature, IHDR and its CRC, size against
 * exp_h x exp_w unless exp_h < 0, max_px, the chunk walk with the IDAT CRCs) and its zlib stream inflated
 * into wk->raw (exactly the declared size, checksum verified); 8-bit RGB or RGBA, not interlaced.  Returns 0,
 * or -1 for anything else (the caller leaves the image to the per-image path). */
static int inflate_png(const uint8_t *d, size_t n, long long exp_h, long long exp_w, unsigned long long max_px,
                       void *dec, pb_work *wk, Py_ssize_t *ph, Py_ssize_t *pw, int *pch) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n < 33 || memcmp(d, sig, 8) || be32(d + 8) != 13 || memcmp(d + 12, "IHDR", 4)) return -1;
    if (ld_crc(0, d + 12, 17) != be32(d + 29)) return -1;
    uint32_t w = be32(d + 16), h = be32(d + 20);
    if (w == 0 || h == 0 || w >= 0x80000000u || h >= 0x80000000u) return -1;
    if (d[24] != 8 || (d[25] != 2 && d[25] != 6) || d[26] || d[27] || d[28]) return -1;
    if (exp_h >= 0 && ((long long)h != exp_h || (long long)w != exp_w)) return -1;
    if ((unsigned long long)w * h > max_px) return -1;
    if ((unsigned long long)w * h > (SIZE_MAX - 4 * (size_t)h) / 5) return -1; /* the sizes below fit size_t */
    size_t pos = 33, count = 0, src_n = 0;
    const uint8_t *src = NULL;
    for (;;) {
        if (pos + 12 > n) return -1;
        uint32_t len = be32(d + pos);
        const uint8_t *kind = d + pos + 4;
        if ((size_t)len > n - pos - 12) return -1; /* the chunk, its CRC included, must lie in the file */
        size_t stop = pos + 8 + (size_t)len;
        if (!memcmp(kind, "IDAT", 4)) {
            if (ld_crc(0, d + pos + 4, (size_t)len + 4) != be32(d + stop)) return -1;
            if (count == 0) {
                src = d + pos + 8;
                src_n = len;
            } else {
                if (buf_reserve(&wk->idat, src_n + len)) return -1;
                if (count == 1) memcpy(wk->idat.p, src, src_n);
                memcpy(wk->idat.p + src_n, d + pos + 8, len);
                src_n += len;
                src = wk->idat.p;
            }
            count++;
        } else if (!memcmp(kind, "IHDR", 4)) {
            return -1;
        } else if (!memcmp(kind, "IEND", 4)) {
            break;
        }
        pos = stop + 4;
    }
    if (!count) return -1;
    int ch = d[25] == 2 ? 3 : 4;
    size_t size = (size_t)h * ((size_t)w * ch + 1), zero = ((size_t)w + 4) * 4;
    if (buf_reserve(&wk->raw, size)) return -1;
    if (ld_zlib(dec, src, src_n, wk->raw.p, size, NULL) != 0) return -1;
    if (wk->zero.cap < zero) { /* the row above the first: zeros */
        if (buf_reserve(&wk->zero, zero)) return -1;
        memset(wk->zero.p, 0, wk->zero.cap);
    }
    *ph = h;
    *pw = w;
    *pch = ch;
    return 0;
}

/* the ground truth's ids, the whole image, into wk->gt_ids */
static int decode_gt(const uint8_t *d, size_t n, long long exp_h, long long exp_w, unsigned long long max_px,
                     void *dec, pb_work *wk, Py_ssize_t *ph, Py_ssize_t *pw) {
    int ch;
    if (inflate_png(d, n, exp_h, exp_w, max_px, dec, wk, ph, pw, &ch)) return -1;
    if (buf_reserve(&wk->gt_ids, (size_t)*ph * *pw * 4)) return -1;
    return unfilter(wk->raw.p, *pw, *ph, ch, (const uint32_t *)wk->zero.p, (uint32_t *)wk->gt_ids.p) ? -1 : 0;
}

/* The prediction (h x w, the ground truth's size) unfiltered a row at a time into two rows of wk->pred_ids,
 * each row counted against the ground truth's as soon as it is out (the counts are sums of runs: a run cut at
 * the end of a row adds up to the same) unless count is 0, and handed to boundary PQ's pass where k is given
 * (which counts the pairs from its runs where k->inter is set); the whole map is never held.  Returns 0 or -1
 * (count_pairs' code, the pass's, or a bad filter type: the caller leaves the image to the per-image path). */
static int count_pred(const uint8_t *d, size_t n, Py_ssize_t h, Py_ssize_t w, unsigned long long max_px, void *dec,
                      pb_work *wk, const pb_idmap *gm, const pb_idmap *pm, int64_t *counts, Py_ssize_t cols,
                      int strict, int32_t unlisted_row, int count, pb_bwork *k, pb_bpass *b) {
    Py_ssize_t ph, pw;
    int ch;
    if (inflate_png(d, n, h, w, max_px, dec, wk, &ph, &pw, &ch)) return -1;
    if (buf_reserve(&wk->pred_ids, (size_t)w * 8)) return -1;
    uint32_t *rows[2] = {(uint32_t *)wk->pred_ids.p, (uint32_t *)wk->pred_ids.p + w};
    const uint32_t *g = (const uint32_t *)wk->gt_ids.p, *prev = (const uint32_t *)wk->zero.p;
    Py_ssize_t stride = w * ch + 1;
    for (Py_ssize_t y = 0; y < h; y++) {
        const uint8_t *src = wk->raw.p + y * stride;
        uint32_t *out = rows[y & 1], bad = 0;
        int rc = ch == 3 ? unfilter_row(src[0], src + 1, prev, out, w, 3) : unfilter_row(src[0], src + 1, prev, out, w, 4);
        if (rc || (count && count_pairs(g + y * w, out, w, gm, pm, counts, cols, &bad, strict, unlisted_row)) ||
            (k && pb_boundary_row(k, b, g + y * w, out, y)))
            return -1;
        prev = out;
    }
    return 0;
}

typedef struct {
    PyObject *gt_path, *pred_path; /* bytes, owned while the GIL is released */
    long long h, w;
    Py_buffer gk, pk, counts;
    int strict, held;
    /* the match's inputs and its output (match: all five given); the predictions' scores (float64; absent: NaN) */
    Py_buffer gc, ga, crowd, pc, res, ps;
    int match, boundary; /* boundary: boundary PQ's contributions into res too */
} pb_item;

/* An item's res: the layout of _match_core.h (PB_RES_*), its predictions' areas [P] after the header. */

/* boundary_pq.dilation: round(0.02 x the image diagonal), half to even (rint), at least 1; h^2 + w^2 exact in
 * uint64 and made a double once, as numpy makes Python's int one */
static int pb_dilation(Py_ssize_t h, Py_ssize_t w) {
    double v = rint(0.02 * sqrt((double)((uint64_t)h * (uint64_t)h + (uint64_t)w * (uint64_t)w)));
    return v < 1.0 ? 1 : (int)v;
}

/* One counted table matched as evaluator.table_result matches it (the area checks, the match, the fold) into
 * it->res; 0, or 1 for a table the per-image path handles (an area check fails: its error; two matches of one
 * segment: the numpy match; res too small) */
static int match_one(pb_item *it, const pb_btab *b) {
    const Py_ssize_t G = it->gk.len / 8, P = it->pk.len / 8, cap = it->res.len / 8;
    const int64_t *t = it->counts.buf, *gc = it->gc.buf, *ga = it->ga.buf, *pc = it->pc.buf;
    const uint8_t *crowd = it->crowd.buf;
    int64_t *res = it->res.buf, *pa = res + PB_RES_HEADER;
    int side, rc = 1;
    if (cap < PB_RES_HEADER + P || pb_areas(t, G, P, ga, pa, &side) >= 0) return 1;
    scratch s, sb; /* the mask match, boundary PQ's */
    pb_match_sizes n, nb = {0, 0, 0, 0};
    void *mem = pb_scratch_init(&s, G, P), *memb = b ? pb_scratch_init(&sb, G, P) : NULL;
    if (mem && (!b || memb) && !pb_match(t, G, P, gc, ga, crowd, pc, pa, NULL, &s, &n) &&
        (!b || !pb_match(t, G, P, gc, ga, crowd, pc, pa, b, &sb, &nb))) {
        int64_t unlisted;
        const Py_ssize_t m = pb_fold_size(t, G, P, &unlisted), ni = pb_match_ints(&n), nf = pb_match_floats(&n);
        int64_t *ints = pa + P, *fold = ints + ni + nf, *bnd = fold + 3 * m, *end = bnd + 2 * nb.tp + nb.fn + nb.fp;
        const Py_ssize_t used = (end - res) + (n.fp + 7) / 8;
        if (used <= cap) {
            pb_match_write(&n, G, P, gc, ga, crowd, pc, pa, it->ps.obj ? (const double *)it->ps.buf : NULL, &s, ints,
                           (double *)(ints + ni), (uint8_t *)end);
            pb_fold_write(t, G, P, gc, pc, m, fold);
            if (b)
                pb_match_write_stats(&nb, G, P, gc, crowd, pc, &sb, bnd, (double *)(bnd + nb.tp), bnd + 2 * nb.tp,
                                     bnd + 2 * nb.tp + nb.fn);
            res[PB_RES_TP] = n.tp, res[PB_RES_FN] = n.fn, res[PB_RES_FP] = n.fp, res[PB_RES_NC] = n.nc;
            res[PB_RES_FOLD] = m, res[PB_RES_UNLISTED] = unlisted, res[PB_RES_USED] = used;
            res[PB_RES_BTP] = nb.tp, res[PB_RES_BFN] = nb.fn, res[PB_RES_BFP] = nb.fp;
            rc = 0;
        }
    }
    free(mem);
    free(memb);
    return rc;
}

/* The fields of a res after the predictions' areas, in the order match_one writes them (the ints, the floats, the
 * fold, boundary PQ's), each as the header entry that counts its rows; fp_matched's bytes follow them. */
static const int pb_res_fields[] = {PB_RES_TP, PB_RES_TP, PB_RES_FN, PB_RES_FN, PB_RES_FP, PB_RES_FP, PB_RES_NC,
                                    PB_RES_TP, PB_RES_FN, PB_RES_FN, PB_RES_FN, PB_RES_FN, PB_RES_FP, PB_RES_FP,
                                    PB_RES_NC, PB_RES_TP, PB_RES_FP, PB_RES_FOLD, PB_RES_FOLD, PB_RES_FOLD, PB_RES_BTP, PB_RES_BTP,
                                    PB_RES_BFN, PB_RES_BFP};
#define PB_RES_NFIELDS ((int)(sizeof pb_res_fields / sizeof pb_res_fields[0]))
#define PB_RES_COUNTS 9 /* n_tp, n_fn, n_fp, n_nc, m, unlisted, b_tp, b_fn, b_fp: what res_columns hands back */

/* One res (cap int64 words; its match after the header and p predictions' areas) checked against its buffer before
 * anything is read past its header: 0 with its PB_RES_COUNTS header entries in head, else -1.  Every row count and
 * p are at most cap (at most 2^60), so the running end cannot overflow before it is compared with used. */
static int res_check(const int64_t *r, Py_ssize_t cap, Py_ssize_t p, int64_t *head) {
    if (cap < PB_RES_HEADER || p < 0 || p > cap - PB_RES_HEADER) return -1;
    int64_t used;
    memcpy(&used, r + PB_RES_USED, 8); /* memcpy: a buffer export need not be aligned */
    if (used < 0 || used > cap) return -1;
    memcpy(head, r, PB_RES_COUNTS * 8);
    for (int k = 0; k < PB_RES_COUNTS; k++)
        if (head[k] < 0 || (k != PB_RES_UNLISTED && head[k] > cap)) return -1;
    int64_t end = PB_RES_HEADER + p;
    for (int f = 0; f < PB_RES_NFIELDS; f++)
        if ((end += head[pb_res_fields[f]]) > used) return -1;
    return (head[PB_RES_FP] + 7) / 8 > used - end ? -1 : 0;
}

/* res_columns(res, n_pred) -> (values, counts, fp_matched): the results match_one wrote into each res (a list of
 * int64 buffers; n_pred: a list of ints, where each match starts after the header) as columns: values holds every
 * field of every image, field by field (in the order of pb_res_fields) and within a field image by image, as int64
 * words (the floats' bits); counts the 6 header entries of each image; fp_matched the FPs' flags, image by image.
 * Every size is checked against its buffer first (ValueError). */
static PyObject *py_res_columns(PyObject *self, PyObject *args) {
    PyObject *list, *npred;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &list, &PyList_Type, &npred)) return NULL;
    if (PyList_GET_SIZE(npred) != PyList_GET_SIZE(list)) {
        PyErr_SetString(PyExc_ValueError, "res_columns: one n_pred per res");
        return NULL;
    }
    /* the lists as they are now: a buffer export may run Python code that changes them */
    PyObject *items = PyList_AsTuple(list), *preds = items ? PyList_AsTuple(npred) : NULL;
    const Py_ssize_t n = PyList_GET_SIZE(list);
    const int fits = n <= PY_SSIZE_T_MAX / (PB_RES_COUNTS * 8); /* the counts' bytes */
    Py_buffer *bufs = fits ? calloc(n ? (size_t)n : 1, sizeof(Py_buffer)) : NULL;
    int64_t *head = fits ? malloc((n ? (size_t)n : 1) * PB_RES_COUNTS * 8) : NULL; /* counts, read once */
    Py_ssize_t *start = malloc((n ? (size_t)n : 1) * sizeof(Py_ssize_t));
    Py_ssize_t total[PB_RES_NFIELDS] = {0}, held = 0, n_fp = 0, words = 0;
    PyObject *values = NULL, *counts = NULL, *matched = NULL, *out = NULL;
    if (!items || !preds || !bufs || !head || !start) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    for (; held < n; held++) {
        if (PyObject_GetBuffer(PyTuple_GET_ITEM(items, held), &bufs[held], PyBUF_SIMPLE) < 0) goto done;
        const Py_ssize_t p = PyLong_AsSsize_t(PyTuple_GET_ITEM(preds, held));
        int64_t *h = head + held * PB_RES_COUNTS;
        if ((p == -1 && PyErr_Occurred()) || bufs[held].len % 8 || res_check(bufs[held].buf, bufs[held].len / 8, p, h)) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_ValueError, "res_columns: res %zd does not hold the match its header describes",
                             held);
            held++;
            goto done;
        }
        Py_ssize_t rows = 0; /* this image's words: at most its used, below 2^60 */
        for (int f = 0; f < PB_RES_NFIELDS; f++) rows += h[pb_res_fields[f]];
        if (rows > PY_SSIZE_T_MAX / 8 - words || h[PB_RES_FP] > PY_SSIZE_T_MAX - n_fp) { /* the columns' sizes */
            PyErr_NoMemory();
            held++;
            goto done;
        }
        words += rows, n_fp += h[PB_RES_FP];
        start[held] = PB_RES_HEADER + p;
        for (int f = 0; f < PB_RES_NFIELDS; f++) total[f] += h[pb_res_fields[f]];
    }
    values = PyByteArray_FromStringAndSize(NULL, words * 8);
    counts = PyByteArray_FromStringAndSize((const char *)head, n * PB_RES_COUNTS * 8);
    matched = PyByteArray_FromStringAndSize(NULL, n_fp);
    if (!values || !counts || !matched) goto done;
    int64_t *v = (int64_t *)PyByteArray_AS_STRING(values);
    uint8_t *fm = (uint8_t *)PyByteArray_AS_STRING(matched);
    Py_ssize_t at[PB_RES_NFIELDS];
    at[0] = 0;
    for (int f = 1; f < PB_RES_NFIELDS; f++) at[f] = at[f - 1] + total[f - 1];
    for (Py_ssize_t i = 0; i < n; i++) { /* field by field, each image's rows after the images before */
        const int64_t *h = head + i * PB_RES_COUNTS, *src = (const int64_t *)bufs[i].buf + start[i];
        for (int f = 0; f < PB_RES_NFIELDS; f++) {
            const Py_ssize_t rows = h[pb_res_fields[f]];
            if (rows) memcpy(v + at[f], src, (size_t)rows * 8);
            at[f] += rows, src += rows;
        }
        if (h[PB_RES_FP]) memcpy(fm, src, (size_t)h[PB_RES_FP]);
        fm += h[PB_RES_FP];
    }
    out = PyTuple_Pack(3, values, counts, matched);
done:
    for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&bufs[i]);
    free(bufs);
    free(head);
    free(start);
    Py_XDECREF(items);
    Py_XDECREF(preds);
    Py_XDECREF(values);
    Py_XDECREF(counts);
    Py_XDECREF(matched);
    return out;
}

/* One image: 0 counted, 1 left to the per-image path.  With boundary PQ (and a pair of segments to match), its
 * pass runs over the rows as the prediction is decoded (boundary_pq.boundary_tables: the boundary tables and,
 * without strict, the pair counts from its runs) and match_one takes its tables. */
static int pair_table_one(pb_item *it, unsigned long long max_px, void *dec, pb_work *wk) {
    Py_ssize_t gh, gw, n;
    if ((n = read_file(PyBytes_AS_STRING(it->gt_path), &wk->file)) < 0) return 1;
    if (decode_gt(wk->file.p, (size_t)n, it->h, it->w, max_px, dec, wk, &gh, &gw)) return 1;
    if ((n = read_file(PyBytes_AS_STRING(it->pred_path), &wk->file)) < 0) return 1;
    const Py_ssize_t n_gt = it->gk.len / 8, n_pred = it->pk.len / 8, cols = n_pred + 1;
    /* strict: the per-pixel count, which refuses unlisted ground-truth ids; the streaks are int32 row numbers */
    const int banded = it->boundary && n_gt > 0 && n_pred > 0, fused = banded && !it->strict;
    pb_idmap gm = {0}, pm = {0};
    pb_bwork k;
    memset(&k, 0, sizeof k); /* pb_bwork_free needs it whether or not init ran */
    lookup lg = {&gm, 0, 0, (int32_t)(n_gt + 1)}, lp = {&pm, 0, 0, -1};
    pb_bpass b = {gw, gh, cols, 0, &lg, &lp, NULL, NULL, NULL, 0};
    int64_t *tab = NULL;
    int rc = 1;
    if (!pb_idmap_init(&gm, it->gk.buf, n_gt) && !pb_idmap_init(&pm, it->pk.buf, n_pred) &&
        (!banded || (gh <= INT32_MAX - 2 && (tab = calloc((size_t)((n_gt + 3) * cols + n_gt + 2), 8)) &&
                     !pb_bwork_init(&k, gw, gh, b.d = pb_dilation(gh, gw))))) {
        memset(it->counts.buf, 0, (size_t)it->counts.len);
        if (banded) {
            k.inter = fused ? it->counts.buf : NULL;
            b.bint = tab, b.bga = tab + (n_gt + 2) * cols, b.bpa = b.bga + n_gt + 2;
        }
        rc = count_pred(wk->file.p, (size_t)n, gh, gw, max_px, dec, wk, &gm, &pm, it->counts.buf, cols, it->strict,
                        (int32_t)(n_gt + 1), !fused, banded ? &k : NULL, &b) ? 1 : 0;
    }
    if (rc == 0 && it->boundary) {
        pb_btab t = {b.bint, b.bga, b.bpa}; /* without a pair of segments the match reads no IoU (numpy: zeros) */
        rc = match_one(it, &t);
    } else if (rc == 0 && it->match) {
        rc = match_one(it, NULL);
    }
    pb_bwork_free(&k);
    free(tab);
    pb_idmap_free(&gm);
    pb_idmap_free(&pm);
    return rc;
}

/* decode_ids(paths, max_pixels) -> list[int | None]: each PNG file read, checked, inflated and unfiltered to ids as
 * pair_tables does it (the GIL released, this thread's buffers), the ids summed (mod 2^64) so that nothing is
 * skipped; None for a file pair_tables would leave to the per-image path.  The decode floor of scripts/bench_pq.py. */
static PyObject *py_decode_ids(PyObject *self, PyObject *args) {
    PyObject *paths;
    unsigned long long max_px;
    if (!PyArg_ParseTuple(args, "O!K", &PyList_Type, &paths, &max_px)) return NULL;
    if (!ld_zlib) {
        PyErr_SetString(PyExc_RuntimeError, "decode_ids: use_libdeflate was not called");
        return NULL;
    }
    PyObject *own = PyList_AsTuple(paths); /* owned while the GIL is released: the list may change meanwhile */
    if (!own) return NULL;
    Py_ssize_t m = PyTuple_GET_SIZE(own);
    for (Py_ssize_t k = 0; k < m; k++)
        if (!PyBytes_Check(PyTuple_GET_ITEM(own, k))) {
            Py_DECREF(own);
            PyErr_SetString(PyExc_TypeError, "decode_ids: paths must be bytes");
            return NULL;
        }
    uint64_t *sums = calloc(m ? (size_t)m : 1, sizeof(uint64_t));
    char *ok = calloc(m ? (size_t)m : 1, 1);
    if (!sums || !ok) {
        free(sums);
        free(ok);
        Py_DECREF(own);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    pb_work *wk = work_get();
    void *dec = wk ? ld_alloc() : NULL;
    for (Py_ssize_t k = 0; dec && k < m; k++) {
        Py_ssize_t n = read_file(PyBytes_AS_STRING(PyTuple_GET_ITEM(own, k)), &wk->file), h, w;
        if (n < 0 || decode_gt(wk->file.p, (size_t)n, -1, -1, max_px, dec, wk, &h, &w)) continue;
        const uint32_t *ids = (const uint32_t *)wk->gt_ids.p;
        uint64_t t = 0;
        for (Py_ssize_t i = 0; i < h * w; i++) t += ids[i];
        sums[k] = t;
        ok[k] = 1;
    }
    if (dec) ld_free(dec);
    work_done(wk);
    Py_END_ALLOW_THREADS
    Py_DECREF(own);
    PyObject *out = PyList_New(m);
    for (Py_ssize_t k = 0; out && k < m; k++) {
        PyObject *v = ok[k] ? PyLong_FromUnsignedLongLong(sums[k]) : Py_NewRef(Py_None);
        if (!v) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, k, v);
    }
    free(sums);
    free(ok);
    return out;
}

static PyObject *py_pair_tables(PyObject *self, PyObject *args) {
    PyObject *items;
    unsigned long long max_px;
    if (!PyArg_ParseTuple(args, "O!K", &PyList_Type, &items, &max_px)) return NULL;
    if (!ld_zlib) {
        PyErr_SetString(PyExc_RuntimeError, "pair_tables: use_libdeflate was not called");
        return NULL;
    }
    Py_ssize_t m = PyList_GET_SIZE(items);
    pb_item *its = calloc(m ? (size_t)m : 1, sizeof(pb_item));
    PyObject *status = PyBytes_FromStringAndSize(NULL, m);
    if (!its || !status) {
        free(its);
        Py_XDECREF(status);
        return PyErr_NoMemory();
    }
    int ok = 1;
    for (Py_ssize_t k = 0; k < m && ok; k++) {
        pb_item *it = &its[k];
        PyObject *t = PyList_GET_ITEM(items, k);
        if (!PyTuple_Check(t) ||
            !PyArg_ParseTuple(t, "SSLLy*y*w*p|y*y*y*y*w*py*", &it->gt_path, &it->pred_path, &it->h, &it->w,
                              &it->gk, &it->pk, &it->counts, &it->strict, &it->gc, &it->ga, &it->crowd, &it->pc,
                              &it->res, &it->boundary, &it->ps)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "pair_tables: items must be tuples");
            ok = 0;
            break;
        }
        Py_INCREF(it->gt_path); /* owned while the GIL is released: the list may change meanwhile */
        Py_INCREF(it->pred_path);
        it->held = 1;
        Py_ssize_t n_gt = it->gk.len / 8, n_pred = it->pk.len / 8;
        it->match = it->res.obj != NULL;
        if (it->gk.len % 8 || it->pk.len % 8 || it->counts.len != (n_gt + 2) * (n_pred + 1) * 8) {
            PyErr_SetString(PyExc_ValueError, "pair_tables: keys must be int64 and counts (n_gt + 2) x (n_pred + 1) "
                                              "int64");
            ok = 0;
        } else if ((it->gc.obj || it->boundary) && (!it->match || it->gc.len != n_gt * 8 || it->ga.len != n_gt * 8 ||
                                  it->crowd.len != n_gt || it->pc.len != n_pred * 8 || it->res.len % 8 ||
                                  (it->ps.obj && it->ps.len != n_pred * 8))) {
            PyErr_SetString(PyExc_ValueError, "pair_tables: the match needs int64 gt cats and areas, one byte per "
                                              "crowd flag, int64 pred cats, an int64 res and float64 pred scores");
            ok = 0;
        }
    }
    if (ok) {
        char *st = PyBytes_AS_STRING(status);
        Py_BEGIN_ALLOW_THREADS
        pb_work *wk = work_get();
        void *dec = wk ? ld_alloc() : NULL;
        for (Py_ssize_t k = 0; k < m; k++) st[k] = dec ? (char)pair_table_one(&its[k], max_px, dec, wk) : 1;
        if (dec) ld_free(dec);
        work_done(wk);
        Py_END_ALLOW_THREADS
    }
    for (Py_ssize_t k = 0; k < m; k++)
        if (its[k].held) {
            Py_DECREF(its[k].gt_path);
            Py_DECREF(its[k].pred_path);
            PyBuffer_Release(&its[k].gk);
            PyBuffer_Release(&its[k].pk);
            PyBuffer_Release(&its[k].counts);
            Py_buffer *opt[] = {&its[k].gc, &its[k].ga, &its[k].crowd, &its[k].pc, &its[k].res, &its[k].ps};
            for (int j = 0; j < 6; j++)
                if (opt[j]->obj) PyBuffer_Release(opt[j]);
        }
    free(its);
    if (!ok) {
        Py_DECREF(status);
        return NULL;
    }
    return status;
}

static PyMethodDef methods[] = {
    {"use_avx2", pb_use_avx2, METH_VARARGS, "Switch the AVX2 loops off or on (tests)."},
    {"unfilter_ids", py_unfilter_ids, METH_VARARGS, "PNG scanlines -> uint32 segment ids (in place into out)."},
    {"pair_counts", py_pair_counts, METH_VARARGS, "Pixel counts of (gt, pred) segment pairs into counts."},
    {"use_libdeflate", py_use_libdeflate, METH_VARARGS, "libdeflate's entry points for pair_tables."},
    {"pair_tables", py_pair_tables, METH_VARARGS, "PNG pairs read, decoded and counted (the batch path)."},
    {"res_columns", py_res_columns, METH_VARARGS, "The matches written into res buffers, as columns."},
    {"decode_ids", py_decode_ids, METH_VARARGS, "PNG files decoded as pair_tables decodes them (the decode floor)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "panbench's per-pixel loops in C.", -1, methods};

PyMODINIT_FUNC PyInit__native(void) {
#ifndef _WIN32
    if (!pb_work_key_ok) pb_work_key_ok = pthread_key_create(&pb_work_key, work_free) == 0;
#endif
    PB_SSSE3_INIT();
    PB_AVX2_INIT();
    return PyModule_Create(&module);
}
