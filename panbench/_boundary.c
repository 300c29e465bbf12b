/* panbench._boundary: the per-pixel part of boundary PQ (Cheng et al. 2021), in C.
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

/* ids -> indices; unknown -> `unknown` (>= 0) or, when unknown < 0, stop and report the id */
static int to_index(const uint32_t *ids, Py_ssize_t n, const idmap *m, int32_t unknown, int32_t *out,
                    uint32_t *bad) {
    uint32_t last = 0;
    int32_t li = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        uint32_t v = ids[i];
        if (v != last) {
            li = idmap_get(m, v);
            if (li < 0) {
                if (unknown < 0) { *bad = v; return 1; }
                li = unknown;
            }
            last = v;
        }
        out[i] = li;
    }
    return 0;
}

/* bnd[i] = 1 where pixel i is on the boundary of its region (regions: equal index) */
static void boundary_of(const int32_t *idx, Py_ssize_t w, Py_ssize_t h, int d, uint8_t *inner_h, uint16_t *up,
                        uint16_t *down_row, uint8_t *bnd) {
    const uint16_t full = (uint16_t)(d + 1);
    for (Py_ssize_t y = 0; y < h; y++) { /* row windows: the run around x extends d both ways */
        const int32_t *r = idx + y * w;
        uint8_t *o = inner_h + y * w;
        Py_ssize_t s = 0;
        while (s < w) {
            Py_ssize_t e = s;
            while (e + 1 < w && r[e + 1] == r[s]) e++;
            Py_ssize_t lo = s + d, hi = e - d; /* interior x in [lo, hi] */
            memset(o + s, 0, (size_t)(e - s + 1));
            if (lo <= hi) memset(o + lo, 1, (size_t)(hi - lo + 1));
            s = e + 1;
        }
    }
    /* consecutive clean rows of the same region, from above (saturating at d + 1) */
    for (Py_ssize_t x = 0; x < w; x++) up[x] = inner_h[x];
    for (Py_ssize_t y = 1; y < h; y++) {
        const int32_t *restrict r = idx + y * w, *restrict ra = r - w;
        const uint8_t *restrict in = inner_h + y * w, *restrict ina = in - w;
        const uint16_t *restrict ua = up + (y - 1) * w;
        uint16_t *restrict u = up + y * w;
        for (Py_ssize_t x = 0; x < w; x++) {
            uint16_t cont = (uint16_t)((r[x] == ra[x]) & ina[x]);
            uint16_t v = cont ? (uint16_t)(ua[x] + (ua[x] < full)) : 1;
            u[x] = in[x] ? v : 0;
        }
    }
    /* and from below; interior needs d + 1 both ways */
    const uint16_t *ul = up + (h - 1) * w;
    const uint8_t *il = inner_h + (h - 1) * w;
    for (Py_ssize_t x = 0; x < w; x++) {
        down_row[x] = il[x];
        bnd[(h - 1) * w + x] = !(ul[x] >= full && il[x] >= full);
    }
    for (Py_ssize_t y = h - 2; y >= 0; y--) {
        const int32_t *restrict r = idx + y * w, *restrict rb = r + w;
        const uint8_t *restrict in = inner_h + y * w, *restrict inb = in + w;
        const uint16_t *restrict u = up + y * w;
        uint16_t *restrict dn = down_row;
        uint8_t *restrict o = bnd + y * w;
        for (Py_ssize_t x = 0; x < w; x++) {
            uint16_t cont = (uint16_t)((r[x] == rb[x]) & inb[x]);
            uint16_t v = cont ? (uint16_t)(dn[x] + (dn[x] < full)) : 1;
            v = in[x] ? v : 0;
            dn[x] = v;
            o[x] = !((u[x] >= full) & (v >= full));
        }
    }
}

static PyObject *py_boundary_counts(PyObject *self, PyObject *args) {
    Py_buffer g, p, gk, pk, bi, ga, pa;
    Py_ssize_t w, h;
    int d;
    if (!PyArg_ParseTuple(args, "y*y*nny*y*iw*w*w*", &g, &p, &w, &h, &gk, &pk, &d, &bi, &ga, &pa)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t n = w * h, n_gt = gk.len / 8, n_pred = pk.len / 8, cols = n_pred + 1;
    if (w < 0 || h < 0 || g.len != n * 4 || p.len != n * 4) {
        PyErr_SetString(PyExc_ValueError, "boundary_counts: id maps must be uint32 height x width");
    } else if (gk.len % 8 || pk.len % 8 || d < 1 || d > 60000) {
        PyErr_SetString(PyExc_ValueError, "boundary_counts: keys must be int64 and 1 <= d <= 60000");
    } else if (bi.len != (n_gt + 2) * cols * 8 || ga.len != (n_gt + 2) * 8 || pa.len != cols * 8) {
        PyErr_SetString(PyExc_ValueError, "boundary_counts: output arrays have the wrong sizes");
    } else {
        idmap gm = {0}, pm = {0};
        int32_t *gi = malloc(n * sizeof(int32_t) + 1), *pi = malloc(n * sizeof(int32_t) + 1);
        uint8_t *inner = malloc(n + 1), *bg = malloc(n + 1), *bp = malloc(n + 1);
        uint16_t *up = malloc(n * sizeof(uint16_t) + 2), *row = malloc(w * sizeof(uint16_t) + 2);
        if (!gi || !pi || !inner || !bg || !bp || !up || !row || idmap_init(&gm, gk.buf, n_gt) ||
            idmap_init(&pm, pk.buf, n_pred)) {
            PyErr_NoMemory();
        } else {
            uint32_t bad = 0;
            int rc;
            Py_BEGIN_ALLOW_THREADS
            int64_t *bint = bi.buf, *bga = ga.buf, *bpa = pa.buf;
            memset(bint, 0, (size_t)bi.len);
            memset(bga, 0, (size_t)ga.len);
            memset(bpa, 0, (size_t)pa.len);
            to_index(g.buf, n, &gm, (int32_t)(n_gt + 1), gi, &bad);
            rc = to_index(p.buf, n, &pm, -1, pi, &bad);
            if (!rc && n > 0) {
                boundary_of(gi, w, h, d, inner, up, row, bg);
                boundary_of(pi, w, h, d, inner, up, row, bp);
                for (Py_ssize_t i = 0; i < n; i++) {
                    int32_t a = gi[i], b = pi[i];
                    if (bg[i]) bga[a]++;
                    if (bp[i]) {
                        bpa[b]++;
                        if (bg[i] || a == 0) bint[a * cols + b]++;
                    }
                }
            }
            Py_END_ALLOW_THREADS
            result = rc ? Py_BuildValue("(iI)", 1, bad) : Py_NewRef(Py_None);
        }
        free(gm.keys);
        free(gm.vals);
        free(pm.keys);
        free(pm.vals);
        free(gi);
        free(pi);
        free(inner);
        free(bg);
        free(bp);
        free(up);
        free(row);
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
