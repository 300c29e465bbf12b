/* panbench.pq._boundary: the per-pixel part of boundary PQ (Cheng et al. 2021), in C.
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
 *
 *   The pass itself (one over the rows of both maps, each pixel read once) is _boundary_core.h's, which
 *   _native.c's batch path runs too.
 *
 *   use_avx2(flag) -> bool: the tests switch the AVX2 row scan off and on.
 */
#include "_common.h"        /* the id table and the AVX2 switch */
#include "_boundary_core.h" /* the one pass over the id maps */

/* The whole pass over two id maps in memory (pb_boundary_row for every row); 0, or 1 with the id in *bad */
static int pb_boundary_pass(const uint32_t *g, const uint32_t *p, Py_ssize_t w, Py_ssize_t h, int d, lookup *lg,
                            lookup *lp, int64_t *bint, int64_t *bga, int64_t *bpa, Py_ssize_t cols, pb_bwork *k,
                            uint32_t *bad) {
    pb_bpass b = {w, h, cols, d, lg, lp, bint, bga, bpa, 0};
    for (Py_ssize_t y = 0; y < h; y++)
        if (pb_boundary_row(k, &b, g + y * w, p + y * w, y)) {
            *bad = b.bad;
            return 1;
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
    if (w < 0 || h < 0 || h > INT32_MAX - 2 || g.len != n * 4 || p.len != n * 4) {
        PyErr_SetString(PyExc_ValueError, "boundary_counts: id maps must be uint32 height x width, height < 2^31 - 2");
    } else if (gk.len % 8 || pk.len % 8 || d < 1) {
        PyErr_SetString(PyExc_ValueError, "boundary_counts: keys must be int64 and d >= 1");
    } else if (bi.len != (n_gt + 2) * cols * 8 || ga.len != (n_gt + 2) * 8 || pa.len != cols * 8) {
        PyErr_SetString(PyExc_ValueError, "boundary_counts: output arrays have the wrong sizes");
    } else {
        pb_idmap gm = {0}, pm = {0};
        pb_bwork k;
        if (pb_bwork_init(&k, w, h, d) || pb_idmap_init(&gm, gk.buf, n_gt) || pb_idmap_init(&pm, pk.buf, n_pred)) {
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
                rc = pb_boundary_pass(g.buf, p.buf, w, h, d, &lg, &lp, bi.buf, ga.buf, pa.buf, cols, &k, &bad);
            Py_END_ALLOW_THREADS
            result = rc ? Py_BuildValue("(iI)", 1, bad) : Py_NewRef(Py_None);
        }
        pb_idmap_free(&gm);
        pb_idmap_free(&pm);
        pb_bwork_free(&k);
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
    {"use_avx2", pb_use_avx2, METH_VARARGS, "Switch the AVX2 row scan off or on (tests)."},
    {"boundary_counts", py_boundary_counts, METH_VARARGS, "Boundary pixel counts of (gt, pred) segment pairs."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_boundary", "Boundary PQ's per-pixel loops in C.", -1,
                                    methods};

PyMODINIT_FUNC PyInit__boundary(void) {
    PB_AVX2_INIT();
    return PyModule_Create(&module);
}
