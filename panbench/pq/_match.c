/* panbench.pq._match: match_image (panbench/pq/matching.py) in C.
 *
 *   match(inter, n_gt, n_pred, gt_cats, gt_areas, gt_iscrowd, pred_cats, pred_areas)
 *       -> (ints, floats, bools, n_tp, n_fn, n_fp, n_nc)  or None
 *
 * inter is the (n_gt + 2) x (n_pred + 1) int64 intersection table of panbench.pq (row/column 0 =
 * VOID), cats and areas are int64, gt_iscrowd is bool (one byte each).  The match comes back
 * packed, in exact sizes, as three bytearrays that matching.py cuts into the ImageMatch fields:
 *   ints   (int64):   tp_cats, tp_area [n_tp], fn_cats, fn_area [n_fn], fp_cats, fp_area [n_fp], gt_cats [n_nc]
 *   floats (float64): tp_ious [n_tp], fn_same, fn_other, fn_pair, fn_pair_other [n_fn], fp_same, fp_other
 *                     [n_fp], gt_iou_sum [n_nc]
 *   bools  (bool):    fp_matched [n_fp]
 * None means "a ground truth or prediction with two IoU > 0.5 matches", which a table counted from
 * pixels cannot give: the caller then takes the numpy path, which handles any table.
 *
 *   areas(inter, n_gt, n_pred, gt_areas, pred_areas) -> None | (side, index)
 *   fold(inter, n_gt, n_pred, gt_cats, pred_cats) -> (packed, m, unlisted)
 *       The area checks and the semantic fold of the same table (each documented at its function).
 *
 * The numbers are bit-identical to the numpy path (tests/pq/test_match_native.py):
 * the same IoU formula (int64 -> double, one division), first-index argmax, and gt_iou_sum added
 * in numpy's pairwise order (pairwise_sum in numpy's loops_utils.h: 8 accumulators, blocks of 128).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* MATCH_IOU and IGNORED_SHARE of matching.py (tests/test_architecture_rules.py keeps them equal) */
#define PB_MATCH_IOU 0.5
#define PB_IGNORED_SHARE 0.5

/* numpy's float64 add.reduce over a contiguous row: its exact order of additions */
static double pairwise_sum(const double *a, Py_ssize_t n) {
    if (n < 8) {
        double res = 0.;
        for (Py_ssize_t i = 0; i < n; i++) res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        Py_ssize_t i;
        for (int j = 0; j < 8; j++) r[j] = a[j];
        for (i = 8; i < n - (n % 8); i += 8)
            for (int j = 0; j < 8; j++) r[j] += a[i + j];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++) res += a[i];
        return res;
    }
    Py_ssize_t n2 = n / 2;
    n2 -= n2 % 8;
    return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

typedef struct {
    /* per ground truth */
    double *best_same_g, *best_other_g, *iou_sum;
    Py_ssize_t *best_p_of_g;
    char *gt_matched;
    /* per prediction */
    double *best_same_p, *best_other_p, *row;
    Py_ssize_t *best_g_of_p;
    char *pred_matched;
    /* true positives (at most one per ground truth) */
    Py_ssize_t *tp_g;
    double *tp_iou;
} scratch;

/* the row pass: IoUs, matches, best overlaps both ways; returns n_tp or -1 (two matches of one segment) */
static Py_ssize_t row_pass(const int64_t *inter, Py_ssize_t G, Py_ssize_t P, const int64_t *gc, const int64_t *ga,
                           const uint8_t *crowd, const int64_t *pc, const int64_t *pa, scratch *s) {
    const Py_ssize_t cols = P + 1;
    Py_ssize_t n_tp = 0;
    for (Py_ssize_t p = 0; p < P; p++) {
        s->best_same_p[p] = -1.0; /* first row always replaces it: the first-index argmax */
        s->best_other_p[p] = 0.0;
        s->best_g_of_p[p] = 0;
        s->pred_matched[p] = 0;
    }
    for (Py_ssize_t g = 0; g < G; g++) {
        const int64_t *in = inter + (g + 1) * cols + 1;
        double bs = 0.0, bo = 0.0;
        Py_ssize_t bp = 0;
        s->gt_matched[g] = 0;
        for (Py_ssize_t p = 0; p < P; p++) {
            int64_t i = in[p];
            double vs = 0.0, vo = 0.0;
            if (i > 0 && !crowd[g]) {
                int64_t u = pa[p] + ga[g] - i - inter[1 + p];
                double iou = (double)i / (double)(u == 0 ? 1 : u);
                if (gc[g] == pc[p]) vs = iou; else vo = iou;
            }
            s->row[p] = vs;
            if (p == 0 || vs > bs) { bs = vs; bp = p; }
            if (vo > bo) bo = vo;
            if (vs > s->best_same_p[p]) { s->best_same_p[p] = vs; s->best_g_of_p[p] = g; }
            if (vo > s->best_other_p[p]) s->best_other_p[p] = vo;
            if (vs > PB_MATCH_IOU) {
                if (s->gt_matched[g] || s->pred_matched[p]) return -1;
                s->gt_matched[g] = s->pred_matched[p] = 1;
                s->tp_g[n_tp] = g;
                s->tp_iou[n_tp++] = vs;
            }
        }
        s->best_same_g[g] = bs;
        s->best_other_g[g] = bo;
        s->best_p_of_g[g] = bp;
        s->iou_sum[g] = P ? pairwise_sum(s->row, P) : 0.0;
    }
    if (G == 0)
        for (Py_ssize_t p = 0; p < P; p++) s->best_same_p[p] = 0.0;
    return n_tp;
}

/* more than half of the prediction on VOID or on its category's crowd (the last in JSON order) */
static int ignored(const int64_t *inter, Py_ssize_t G, Py_ssize_t P, const int64_t *gc, const uint8_t *crowd,
                   const int64_t *pc, const int64_t *pa, Py_ssize_t p) {
    const Py_ssize_t cols = P + 1;
    int64_t px = inter[1 + p];
    for (Py_ssize_t g = G - 1; g >= 0; g--)
        if (crowd[g] && gc[g] == pc[p]) {
            px += inter[(g + 1) * cols + 1 + p];
            break;
        }
    if (pa[p] == 0) return px > 0; /* numpy: px / 0 is inf (> 0.5) or nan (not) */
    return (double)px / (double)pa[p] > PB_IGNORED_SHARE;
}

static PyObject *py_match(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bi, bgc, bga, bcr, bpc, bpa;
    Py_ssize_t G, P;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*y*y*", &bi, &G, &P, &bgc, &bga, &bcr, &bpc, &bpa)) return NULL;
    PyObject *result = NULL, *oi = NULL, *of = NULL, *ob = NULL;
    void *mem = NULL;
    if (G < 0 || P < 0 || bi.len != (G + 2) * (P + 1) * 8 || bgc.len != G * 8 || bga.len != G * 8 ||
        bcr.len != G || bpc.len != P * 8 || bpa.len != P * 8) {
        PyErr_SetString(PyExc_ValueError, "match: expected an (n_gt + 2) x (n_pred + 1) int64 table, int64 "
                                          "cats/areas and one byte per crowd flag");
        goto done;
    }
    const int64_t *inter = bi.buf, *gc = bgc.buf, *ga = bga.buf, *pc = bpc.buf, *pa = bpa.buf;
    const uint8_t *crowd = bcr.buf;
    const Py_ssize_t M = (G > P ? G : P) + 1;
    mem = malloc((size_t)M * (7 * sizeof(double) + 3 * sizeof(Py_ssize_t) + 3));
    if (!mem) {
        PyErr_NoMemory();
        goto done;
    }
    scratch s;
    double *d = mem;
    s.best_same_g = d, s.best_other_g = d + M, s.iou_sum = d + 2 * M, s.best_same_p = d + 3 * M;
    s.best_other_p = d + 4 * M, s.row = d + 5 * M, s.tp_iou = d + 6 * M;
    Py_ssize_t *z = (Py_ssize_t *)(d + 7 * M);
    s.best_p_of_g = z, s.best_g_of_p = z + M, s.tp_g = z + 2 * M;
    s.gt_matched = (char *)(z + 3 * M), s.pred_matched = s.gt_matched + M;
    char *fp_flag = s.pred_matched + M;

    Py_ssize_t n_tp;
    Py_BEGIN_ALLOW_THREADS
    n_tp = row_pass(inter, G, P, gc, ga, crowd, pc, pa, &s);
    Py_END_ALLOW_THREADS
    if (n_tp < 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    Py_ssize_t n_fn = 0, n_fp = 0, n_nc = 0;
    for (Py_ssize_t g = 0; g < G; g++) {
        n_nc += !crowd[g];
        n_fn += !crowd[g] && !s.gt_matched[g];
    }
    for (Py_ssize_t p = 0; p < P; p++) {
        fp_flag[p] = !s.pred_matched[p] && !ignored(inter, G, P, gc, crowd, pc, pa, p);
        n_fp += fp_flag[p];
    }
    oi = PyByteArray_FromStringAndSize(NULL, (2 * n_tp + 2 * n_fn + 2 * n_fp + n_nc) * 8);
    of = PyByteArray_FromStringAndSize(NULL, (n_tp + 4 * n_fn + 2 * n_fp + n_nc) * 8);
    ob = PyByteArray_FromStringAndSize(NULL, n_fp);
    if (!oi || !of || !ob) goto done;
    int64_t *tp_cats = (int64_t *)PyByteArray_AS_STRING(oi), *tp_area = tp_cats + n_tp, *fn_cats = tp_area + n_tp,
            *fn_area = fn_cats + n_fn, *fp_cats = fn_area + n_fn, *fp_area = fp_cats + n_fp, *gt_cats = fp_area + n_fp;
    double *tp_ious = (double *)PyByteArray_AS_STRING(of), *fn_same = tp_ious + n_tp, *fn_other = fn_same + n_fn,
           *fn_pair = fn_other + n_fn, *fn_pair_other = fn_pair + n_fn, *fp_same = fn_pair_other + n_fn,
           *fp_other = fp_same + n_fp,
           *gt_iou_sum = fp_other + n_fp;
    uint8_t *fp_matched = (uint8_t *)PyByteArray_AS_STRING(ob);
    for (Py_ssize_t k = 0; k < n_tp; k++) {
        tp_cats[k] = gc[s.tp_g[k]];
        tp_area[k] = ga[s.tp_g[k]];
        tp_ious[k] = s.tp_iou[k];
    }
    Py_ssize_t f = 0, c = 0;
    for (Py_ssize_t g = 0; g < G; g++) {
        if (crowd[g]) continue;
        gt_cats[c] = gc[g];
        gt_iou_sum[c++] = s.iou_sum[g];
        if (s.gt_matched[g]) continue;
        double bs = s.best_same_g[g];
        Py_ssize_t p = s.best_p_of_g[g];
        fn_cats[f] = gc[g];
        fn_area[f] = ga[g];
        fn_same[f] = bs;
        fn_other[f] = s.best_other_g[g];
        int pair = P && bs > 0 && !s.pred_matched[p] && s.best_g_of_p[p] == g;
        fn_pair[f] = pair ? bs : 0.0;
        fn_pair_other[f++] = pair && fp_flag[p] ? s.best_other_p[p] : 0.0;
    }
    f = 0;
    for (Py_ssize_t p = 0; p < P; p++) {
        if (!fp_flag[p]) continue;
        fp_cats[f] = pc[p];
        fp_area[f] = pa[p];
        fp_same[f] = s.best_same_p[p];
        fp_other[f] = s.best_other_p[p];
        fp_matched[f++] = G && s.best_same_p[p] > 0 && s.gt_matched[s.best_g_of_p[p]];
    }
    result = Py_BuildValue("(OOOnnnn)", oi, of, ob, n_tp, n_fn, n_fp, n_nc);
done:
    free(mem);
    Py_XDECREF(oi);
    Py_XDECREF(of);
    Py_XDECREF(ob);
    PyBuffer_Release(&bi);
    PyBuffer_Release(&bgc);
    PyBuffer_Release(&bga);
    PyBuffer_Release(&bcr);
    PyBuffer_Release(&bpc);
    PyBuffer_Release(&bpa);
    return result;
}

/* areas(inter, n_gt, n_pred, gt_areas, pred_areas) -> None | (0, g) | (1, p)
 * The checks of evaluator._match on the same table: (0, g) for the first ground truth whose pixels (row
 * g + 1, every column) exceed its JSON area; else the predictions' areas (columns 1..n_pred, every row)
 * go into pred_areas and (1, p) names the first that is 0.  None: both checks pass. */
static PyObject *py_areas(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bi, bga, bpa;
    Py_ssize_t G, P;
    if (!PyArg_ParseTuple(args, "y*nny*w*", &bi, &G, &P, &bga, &bpa)) return NULL;
    PyObject *result = NULL;
    if (G < 0 || P < 0 || bi.len != (G + 2) * (P + 1) * 8 || bga.len != G * 8 || bpa.len != P * 8) {
        PyErr_SetString(PyExc_ValueError, "areas: expected an (n_gt + 2) x (n_pred + 1) int64 table, int64 areas");
    } else {
        const int64_t *t = bi.buf, *ga = bga.buf;
        int64_t *pa = bpa.buf;
        Py_ssize_t cols = P + 1, bad = -1;
        for (Py_ssize_t g = 0; g < G && bad < 0; g++) {
            int64_t sum = 0;
            for (Py_ssize_t c = 0; c < cols; c++) sum += t[(g + 1) * cols + c];
            if (sum > ga[g]) bad = g;
        }
        if (bad >= 0) {
            result = Py_BuildValue("(in)", 0, bad);
        } else {
            memset(pa, 0, (size_t)P * 8);
            for (Py_ssize_t r = 0; r < G + 2; r++)
                for (Py_ssize_t c = 1; c < cols; c++) pa[c - 1] += t[r * cols + c];
            for (Py_ssize_t p = 0; p < P && bad < 0; p++)
                if (pa[p] == 0) bad = p;
            result = bad >= 0 ? Py_BuildValue("(in)", 1, bad) : Py_NewRef(Py_None);
        }
    }
    PyBuffer_Release(&bi);
    PyBuffer_Release(&bga);
    PyBuffer_Release(&bpa);
    return result;
}

/* fold(inter, n_gt, n_pred, gt_cats, pred_cats) -> (packed, m, unlisted)
 * matching.semantic_pairs and evaluator.unlisted_pixels on the same table: the m non-zero cells of rows
 * 0..n_gt in row-major order as (ground-truth category, predicted category, pixels), VOID = -1, packed as
 * int64 [m] x 3 in one bytearray; unlisted = the pixels of row n_gt + 1. */
static PyObject *py_fold(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bi, bgc, bpc;
    Py_ssize_t G, P;
    if (!PyArg_ParseTuple(args, "y*nny*y*", &bi, &G, &P, &bgc, &bpc)) return NULL;
    PyObject *result = NULL;
    if (G < 0 || P < 0 || bi.len != (G + 2) * (P + 1) * 8 || bgc.len != G * 8 || bpc.len != P * 8) {
        PyErr_SetString(PyExc_ValueError, "fold: expected an (n_gt + 2) x (n_pred + 1) int64 table, int64 cats");
    } else {
        const int64_t *t = bi.buf, *gc = bgc.buf, *pc = bpc.buf;
        Py_ssize_t cols = P + 1, m = 0, k = 0;
        int64_t unlisted = 0;
        for (Py_ssize_t i = 0; i < (G + 1) * cols; i++) m += t[i] != 0;
        for (Py_ssize_t c = 0; c < cols; c++) unlisted += t[(G + 1) * cols + c];
        PyObject *packed = PyByteArray_FromStringAndSize(NULL, 3 * m * 8);
        if (packed) {
            int64_t *o = (int64_t *)PyByteArray_AS_STRING(packed);
            for (Py_ssize_t r = 0; r <= G; r++)
                for (Py_ssize_t c = 0; c < cols; c++) {
                    int64_t v = t[r * cols + c];
                    if (!v) continue;
                    o[k] = r ? gc[r - 1] : -1;
                    o[m + k] = c ? pc[c - 1] : -1;
                    o[2 * m + k++] = v;
                }
            result = Py_BuildValue("(NnL)", packed, m, (long long)unlisted);
        }
    }
    PyBuffer_Release(&bi);
    PyBuffer_Release(&bgc);
    PyBuffer_Release(&bpc);
    return result;
}

static PyMethodDef methods[] = {
    {"match", py_match, METH_VARARGS, "match_image of panbench.pq.matching, packed (see the module source)."},
    {"areas", py_areas, METH_VARARGS, "The area checks of evaluator._match and the predictions' areas."},
    {"fold", py_fold, METH_VARARGS, "semantic_pairs and unlisted_pixels of one table, packed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_match", "panbench's per-image match in C.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__match(void) { return PyModule_Create(&module); }
