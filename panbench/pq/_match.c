/* panbench.pq._match: match_image (panbench/pq/matching.py) in C.
 *
 *   match(inter, n_gt, n_pred, gt_cats, gt_areas, gt_iscrowd, pred_cats, pred_areas[, pred_scores]) -> res or None
 *
 * The table, the res (a bytearray: the match alone, without areas, fold or boundary PQ) and the bit-for-bit rules
 * are those of _match_core.h, which holds the code (_native.c runs the same on its threads).  None means "a ground truth or
 * prediction with two IoU > 0.5 matches", which a table counted from pixels cannot give: the caller then takes
 * the numpy path, which handles any table.
 *
 *   boundary_match(inter, n_gt, n_pred, gt_cats, gt_areas, gt_iscrowd, pred_cats, pred_areas, bint, bg_area,
 *                  bp_area) -> res or None
 *       Boundary PQ's contributions (boundary.boundary_image_stats): the same match with each pair's IoU
 *       min(mask IoU, boundary IoU), from boundary_tables' bint ((n_gt + 2) x (n_pred + 1)) and boundary areas
 *       (n_gt and n_pred), as a res of _match_core.h's layout holding b_tp_cats, b_tp_ious, b_fn_cats and
 *       b_fp_cats alone.
 *
 *   areas(inter, n_gt, n_pred, gt_areas, pred_areas) -> None | (side, index)
 *   fold(inter, n_gt, n_pred, gt_cats, pred_cats) -> res
 *       The area checks and the semantic fold of the same table (each documented at its function).
 *   segments(segments_info, category_index, gt) -> bytearray | None
 *   typed(segments_info, gt) -> bool
 *   scan(document, gt) -> None | (text, segments);  packed(fields, n, category_index, gt) -> bytearray | None
 *       What the match reads of a segments_info (coco_format.parse_segments) and the type check of
 *       coco_format.parse_annotations, for the segments_info that pass every check; anything else goes to
 *       the Python code, which names the problem.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <math.h>

#include "_match_core.h"
#include "_json_scan.h"

static PyObject *py_match(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bi, bgc, bga, bcr, bpc, bpa, bps = {0};
    Py_ssize_t G, P;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*y*y*|y*", &bi, &G, &P, &bgc, &bga, &bcr, &bpc, &bpa, &bps)) return NULL;
    PyObject *result = NULL, *res = NULL;
    void *mem = NULL;
    if (G < 0 || P < 0 || bi.len != (G + 2) * (P + 1) * 8 || bgc.len != G * 8 || bga.len != G * 8 ||
        bcr.len != G || bpc.len != P * 8 || bpa.len != P * 8 || (bps.obj && bps.len != P * 8)) {
        PyErr_SetString(PyExc_ValueError, "match: expected an (n_gt + 2) x (n_pred + 1) int64 table, int64 "
                                          "cats/areas, one byte per crowd flag and float64 scores");
        goto done;
    }
    const int64_t *inter = bi.buf, *gc = bgc.buf, *ga = bga.buf, *pc = bpc.buf, *pa = bpa.buf;
    const uint8_t *crowd = bcr.buf;
    scratch s;
    mem = pb_scratch_init(&s, G, P);
    if (!mem) {
        PyErr_NoMemory();
        goto done;
    }
    pb_match_sizes n;
    int two;
    Py_BEGIN_ALLOW_THREADS
    two = pb_match(inter, G, P, gc, ga, crowd, pc, pa, NULL, &s, &n);
    Py_END_ALLOW_THREADS
    if (two) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    const Py_ssize_t ni = pb_match_ints(&n), nf = pb_match_floats(&n);
    const Py_ssize_t used = PB_RES_HEADER + ni + nf + (n.fp + 7) / 8; /* the layout of _match_core.h */
    res = PyByteArray_FromStringAndSize(NULL, used * 8);
    if (!res) goto done;
    int64_t *r = (int64_t *)PyByteArray_AS_STRING(res), *ints = r + PB_RES_HEADER;
    memset(r, 0, (size_t)used * 8);
    r[PB_RES_TP] = n.tp, r[PB_RES_FN] = n.fn, r[PB_RES_FP] = n.fp, r[PB_RES_NC] = n.nc, r[PB_RES_USED] = used;
    pb_match_write(&n, G, P, gc, ga, crowd, pc, pa, bps.obj ? (const double *)bps.buf : NULL, &s, ints,
                   (double *)(ints + ni), (uint8_t *)(ints + ni + nf));
    result = Py_NewRef(res);
done:
    free(mem);
    Py_XDECREF(res);
    PyBuffer_Release(&bi);
    PyBuffer_Release(&bgc);
    PyBuffer_Release(&bga);
    PyBuffer_Release(&bcr);
    PyBuffer_Release(&bpc);
    PyBuffer_Release(&bpa);
    if (bps.obj) PyBuffer_Release(&bps);
    return result;
}

static PyObject *py_boundary_match(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bi, bgc, bga, bcr, bpc, bpa, bb, bbg, bbp;
    Py_ssize_t G, P;
    if (!PyArg_ParseTuple(args, "y*nny*y*y*y*y*y*y*y*", &bi, &G, &P, &bgc, &bga, &bcr, &bpc, &bpa, &bb, &bbg, &bbp))
        return NULL;
    PyObject *result = NULL, *res = NULL;
    void *mem = NULL;
    int64_t *areas = NULL;
    if (G < 0 || P < 0 || bi.len != (G + 2) * (P + 1) * 8 || bgc.len != G * 8 || bga.len != G * 8 ||
        bcr.len != G || bpc.len != P * 8 || bpa.len != P * 8 || bb.len != bi.len || bbg.len != G * 8 ||
        bbp.len != P * 8) {
        PyErr_SetString(PyExc_ValueError, "boundary_match: expected two (n_gt + 2) x (n_pred + 1) int64 tables, "
                                          "int64 cats/areas/boundary areas and one byte per crowd flag");
        goto done;
    }
    scratch s;
    mem = pb_scratch_init(&s, G, P);
    areas = malloc((size_t)(G + P + 2) * 8); /* the boundary areas with index 0 (VOID) in front, as pb_btab has */
    if (!mem || !areas) {
        PyErr_NoMemory();
        goto done;
    }
    areas[0] = areas[G + 1] = 0;
    memcpy(areas + 1, bbg.buf, (size_t)G * 8);
    memcpy(areas + G + 2, bbp.buf, (size_t)P * 8);
    const pb_btab b = {bb.buf, areas, areas + G + 1};
    const int64_t *gc = bgc.buf, *pc = bpc.buf;
    const uint8_t *crowd = bcr.buf;
    pb_match_sizes n;
    int two;
    Py_BEGIN_ALLOW_THREADS
    two = pb_match(bi.buf, G, P, gc, bga.buf, crowd, pc, bpa.buf, &b, &s, &n);
    Py_END_ALLOW_THREADS
    if (two) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    const Py_ssize_t used = PB_RES_HEADER + 2 * n.tp + n.fn + n.fp; /* the layout of _match_core.h */
    res = PyByteArray_FromStringAndSize(NULL, used * 8);
    if (!res) goto done;
    int64_t *r = (int64_t *)PyByteArray_AS_STRING(res), *bnd = r + PB_RES_HEADER;
    memset(r, 0, PB_RES_HEADER * 8);
    r[PB_RES_BTP] = n.tp, r[PB_RES_BFN] = n.fn, r[PB_RES_BFP] = n.fp, r[PB_RES_USED] = used;
    pb_match_write_stats(&n, G, P, gc, crowd, pc, &s, bnd, (double *)(bnd + n.tp), bnd + 2 * n.tp,
                         bnd + 2 * n.tp + n.fn);
    result = Py_NewRef(res);
done:
    free(mem);
    free(areas);
    Py_XDECREF(res);
    Py_buffer *all[] = {&bi, &bgc, &bga, &bcr, &bpc, &bpa, &bb, &bbg, &bbp};
    for (int k = 0; k < 9; k++) PyBuffer_Release(all[k]);
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
        int side = 0;
        Py_ssize_t bad = pb_areas(bi.buf, G, P, bga.buf, bpa.buf, &side);
        result = bad >= 0 ? Py_BuildValue("(in)", side, bad) : Py_NewRef(Py_None);
    }
    PyBuffer_Release(&bi);
    PyBuffer_Release(&bga);
    PyBuffer_Release(&bpa);
    return result;
}

/* fold(inter, n_gt, n_pred, gt_cats, pred_cats) -> res
 * matching.semantic_pairs and evaluator.unlisted_pixels on the same table: the m non-zero cells of rows
 * 0..n_gt in row-major order as (ground-truth category, predicted category, pixels), VOID = -1, as a res of
 * _match_core.h's layout holding sem_gt, sem_pred, sem_px [m each] alone, its header's unlisted the pixels of
 * row n_gt + 1. */
static PyObject *py_fold(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bi, bgc, bpc;
    Py_ssize_t G, P;
    if (!PyArg_ParseTuple(args, "y*nny*y*", &bi, &G, &P, &bgc, &bpc)) return NULL;
    PyObject *result = NULL;
    if (G < 0 || P < 0 || bi.len != (G + 2) * (P + 1) * 8 || bgc.len != G * 8 || bpc.len != P * 8) {
        PyErr_SetString(PyExc_ValueError, "fold: expected an (n_gt + 2) x (n_pred + 1) int64 table, int64 cats");
    } else {
        int64_t unlisted;
        Py_ssize_t m = pb_fold_size(bi.buf, G, P, &unlisted);
        result = PyByteArray_FromStringAndSize(NULL, (PB_RES_HEADER + 3 * m) * 8);
        if (result) {
            int64_t *r = (int64_t *)PyByteArray_AS_STRING(result);
            memset(r, 0, PB_RES_HEADER * 8);
            r[PB_RES_FOLD] = m, r[PB_RES_UNLISTED] = unlisted, r[PB_RES_USED] = PB_RES_HEADER + 3 * m;
            pb_fold_write(bi.buf, G, P, bgc.buf, bpc.buf, m, r + PB_RES_HEADER);
        }
    }
    PyBuffer_Release(&bi);
    PyBuffer_Release(&bgc);
    PyBuffer_Release(&bpc);
    return result;
}

#define PB_MAX_ID (1 << 24)        /* kernels.MAX_ID: ids are R + 256 G + 256^2 B */
#define PB_MAX_SEGMENTS 65535      /* kernels._SENTINEL: at most 65534 segments per image */
#define PB_MAX_AREA (1LL << 62)

/* an exact int (not bool, not float) in [lo, hi) into *v; 0 for anything else */
static int exact_int(PyObject *o, long long lo, long long hi, long long *v) {
    if (!o || !PyLong_CheckExact(o)) return 0;
    int overflow;
    *v = PyLong_AsLongLongAndOverflow(o, &overflow);
    return !overflow && *v >= lo && *v < hi;
}

/* the keys of a segment, made once (PyDict_GetItemString would make and hash a new str at each lookup) */
static PyObject *k_id, *k_category_id, *k_area, *k_iscrowd, *k_score;

/* a score as parse_segments takes it: absent (NaN), an exact float in [0, 1] or an exact int 0 or 1, into *v;
 * 0 for anything else (parse_segments names it) */
static int score_of(PyObject *o, double *v) {
    if (!o) {
        *v = NAN;
        return 1;
    }
    if (PyFloat_CheckExact(o)) {
        *v = PyFloat_AS_DOUBLE(o);
        return *v >= 0.0 && *v <= 1.0;
    }
    long long i;
    if (!exact_int(o, 0, 2, &i)) return 0;
    *v = (double)i;
    return 1;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* out (n ids first) when the ids are unique, else None; out is consumed */
static PyObject *unique_ids(PyObject *out, const int64_t *ids, Py_ssize_t n) {
    if (n < 2) return out;
    int64_t *sorted = malloc((size_t)n * 8);
    if (!sorted) {
        Py_DECREF(out);
        return PyErr_NoMemory();
    }
    memcpy(sorted, ids, (size_t)n * 8);
    qsort(sorted, (size_t)n, 8, cmp_i64);
    int dup = 0;
    for (Py_ssize_t k = 1; k < n && !dup; k++) dup = sorted[k] == sorted[k - 1];
    free(sorted);
    if (!dup) return out;
    Py_DECREF(out);
    Py_RETURN_NONE;
}

/* segments(segments_info, category_index, gt) -> bytearray | None
 * parse_segments' arrays for a segments_info whose every entry is a dict with an exact int id in 1..2^24-1
 * (unique), an exact int category_id that category_index (COCO id -> index) holds, an iscrowd absent or an
 * exact int, with gt an exact int area in 0..2^62-1, and without gt a score that score_of takes: ids, category
 * indices, areas (0 without gt) as int64 [n] each, the scores as float64 [n] (NaN: none; with gt all NaN), then
 * the crowd flags [n bytes]; None for anything else. */
static PyObject *py_segments(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *segs, *index;
    int gt;
    if (!PyArg_ParseTuple(args, "O!O!p", &PyList_Type, &segs, &PyDict_Type, &index, &gt)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(segs);
    if (n >= PB_MAX_SEGMENTS) Py_RETURN_NONE;
    PyObject *out = PyByteArray_FromStringAndSize(NULL, n * 33);
    if (!out) return NULL;
    int64_t *ids = (int64_t *)PyByteArray_AS_STRING(out), *cats = ids + n, *areas = cats + n;
    double *scores = (double *)(areas + n);
    uint8_t *crowd = (uint8_t *)(scores + n);
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *s = PyList_GET_ITEM(segs, k), *v;
        long long id, cat, area = 0, c = 0;
        double score = NAN;
        if (!PyDict_CheckExact(s) || !exact_int(PyDict_GetItem(s, k_id), 1, PB_MAX_ID, &id)) goto other;
        v = PyDict_GetItem(s, k_category_id);
        if (!v || !PyLong_CheckExact(v) || !(v = PyDict_GetItemWithError(index, v)) ||
            !exact_int(v, 0, PY_SSIZE_T_MAX, &cat))
            goto other;
        if (gt && !exact_int(PyDict_GetItem(s, k_area), 0, PB_MAX_AREA, &area)) goto other;
        if (!gt && !score_of(PyDict_GetItem(s, k_score), &score)) goto other;
        v = PyDict_GetItem(s, k_iscrowd);
        if (v && !exact_int(v, LLONG_MIN, LLONG_MAX, &c)) goto other;
        ids[k] = id, cats[k] = cat, areas[k] = area, scores[k] = score, crowd[k] = v && c == 1;
    }
    return unique_ids(out, ids, n);
other:
    Py_DECREF(out);
    if (PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

/* packed(fields, n, category_index, gt) -> bytearray | None
 * segments() for a segments_info that scan() read: fields holds its n ids, category ids, areas (int64 each), crowd
 * flags (a byte each) and scores (float64 each, unaligned; NaN: none), every integer a plain integer in the JSON
 * and every score a number; the same checks, the same bytearray. */
static PyObject *py_packed(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer bf;
    Py_ssize_t n;
    PyObject *index;
    int gt;
    if (!PyArg_ParseTuple(args, "y*nO!p", &bf, &n, &PyDict_Type, &index, &gt)) return NULL;
    PyObject *out = NULL;
    if (n < 0 || n > PY_SSIZE_T_MAX / 33 || bf.len != n * 33) {
        PyErr_SetString(PyExc_ValueError, "packed: expected n int64 ids, category ids and areas, n crowd bytes, "
                                          "n float64 scores");
        goto done;
    }
    if (n >= PB_MAX_SEGMENTS) {
        out = Py_NewRef(Py_None);
        goto done;
    }
    if (!(out = PyByteArray_FromStringAndSize(NULL, n * 33))) goto done;
    int64_t *ids = (int64_t *)PyByteArray_AS_STRING(out), *cats = ids + n, *areas = cats + n;
    double *scores = (double *)(areas + n);
    const char *in = bf.buf;
    memcpy(ids, in, (size_t)n * 24); /* ids, category ids, areas */
    memcpy(scores, in + 25 * n, (size_t)n * 8);
    memcpy(scores + n, in + 24 * n, (size_t)n); /* the crowd flags */
    for (Py_ssize_t k = 0; k < n; k++) {
        if (gt) {
            scores[k] = NAN;
        } else if (!isnan(scores[k]) && !(scores[k] >= 0.0 && scores[k] <= 1.0)) {
            goto fail;
        }
        long long cat;
        PyObject *key = PyLong_FromLongLong(cats[k]), *v;
        if (!key) goto fail;
        v = PyDict_GetItemWithError(index, key);
        Py_DECREF(key);
        if (ids[k] < 1 || ids[k] >= PB_MAX_ID || !v || !exact_int(v, 0, PY_SSIZE_T_MAX, &cat) ||
            (gt && (areas[k] < 0 || areas[k] >= PB_MAX_AREA)))
            goto fail;
        cats[k] = cat;
        if (!gt) areas[k] = 0;
    }
    out = unique_ids(out, ids, n);
    goto done;
fail:
    Py_CLEAR(out);
    if (!PyErr_Occurred()) out = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&bf);
    return out;
}

/* scan(document, gt) -> None | (text, segments)
 * _json_scan.h's scan of a JSON document's bytes: text is the document with every segments_info array that
 * passes cut out ([] in its place); segments has one entry per element of "annotations", in order: None where
 * the array stayed in the text, else (start, stop, n, fields) for the array at document[start:stop], its n
 * segments' fields as packed() reads them.  None: json.load reads the whole document (see _json_scan.h). */
static int scan_annotations(pb_cur *c, const unsigned char *base, int gt, pb_vec *spans, pb_vec *fields) {
    const unsigned char *s;
    int esc;
    c->p++;
    pb_ws(c);
    if (c->p < c->end && *c->p == ']') return c->p++, 0;
    for (;;) {
        pb_ws(c);
        if (c->p >= c->end || *c->p++ != '{') return -1;
        int seen = 0;
        pb_ws(c);
        if (c->p < c->end && *c->p == '}') return -1; /* no segments_info */
        for (;;) {
            pb_ws(c);
            if (c->p >= c->end || *c->p != '"') return -1;
            s = c->p + 1;
            if (pb_skip_string(c, &esc) || esc) return -1;
            int is_segs = pb_key_is(s, c->p - 1, "segments_info");
            pb_ws(c);
            if (c->p >= c->end || *c->p++ != ':') return -1;
            pb_ws(c);
            if (is_segs) {
                Py_ssize_t n, start = c->p - base, at = fields->n;
                if (seen++ || c->p >= c->end || *c->p != '[') return -1;
                int r = pb_segments(c, base, gt, fields, &n);
                if (r < 0) return r;
                if (!r) fields->n = at;
                if (pb_push(spans, start) || pb_push(spans, c->p - base) || pb_push(spans, r) || pb_push(spans, n) ||
                    pb_push(spans, at))
                    return -2;
            } else if (pb_skip_value(c)) {
                return -1;
            }
            pb_ws(c);
            if (c->p >= c->end) return -1;
            if (*c->p == '}') break;
            if (*c->p++ != ',') return -1;
        }
        c->p++;
        if (!seen) return -1;
        pb_ws(c);
        if (c->p >= c->end) return -1;
        if (*c->p == ']') return c->p++, 0;
        if (*c->p++ != ',') return -1;
    }
}

/* 10^k, k = 0..22: each exact in a double */
static const double pb_pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* the number the scan found at p (a score), as json.loads reads it: an integer as Python's float() of it (0 for
 * -0); a decimal without exponent whose digits make an integer m <= 2^53 and that has k <= 22 digits after its
 * point as m / 10^k (both exact doubles, so the one division rounds the decimal's exact value correctly, as
 * float() does); else PyOS_string_to_double (what float() of its text runs); 0, or -1 with an exception set */
static int score_text(const unsigned char *p, const unsigned char *end, double *v) {
    pb_cur c = {p, end};
    int64_t i;
    int r = pb_number(&c, &i);
    if (r == 0) {
        *v = (double)i;
        return 0;
    }
    if (r < 0) {
        PyErr_SetString(PyExc_ValueError, "scan: a score that is not a number");
        return -1;
    }
    const unsigned char *q = p;
    const int neg = *q == '-';
    uint64_t m = 0;
    int digits = 0, frac = -1; /* frac: digits after the point (-1 before it) */
    for (q += neg; q < c.p && digits <= 16; q++) {
        if (*q == '.') {
            frac = 0;
        } else if (*q >= '0' && *q <= '9') {
            m = 10 * m + (uint64_t)(*q - '0');
            digits += m > 0; /* leading zeros are no digits of m */
            frac += frac >= 0;
        } else {
            break; /* an exponent */
        }
    }
    if (q == c.p && frac >= 0 && frac <= 22 && m <= (1ULL << 53)) {
        *v = (double)m / pb_pow10[frac];
        if (neg) *v = -*v;
        return 0;
    }
    char *stop;
    *v = PyOS_string_to_double((const char *)p, &stop, NULL); /* up to the number's end */
    return *v == -1.0 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *scan_result(const unsigned char *base, Py_ssize_t len, pb_vec *spans, pb_vec *fields) {
    Py_ssize_t m = spans->n / 5, cut = 0; /* spans: start, stop, plain, n, where its fields start */
    for (Py_ssize_t a = 0; a < m; a++)
        if (spans->a[5 * a + 2]) cut += spans->a[5 * a + 1] - spans->a[5 * a] - 2;
    PyObject *text = PyBytes_FromStringAndSize(NULL, len - cut), *segs = PyList_New(m), *res = NULL;
    if (!text || !segs) goto done;
    char *t = PyBytes_AS_STRING(text);
    Py_ssize_t from = 0;
    for (Py_ssize_t a = 0; a < m; a++) {
        int64_t *sp = spans->a + 5 * a, n = sp[3];
        if (!sp[2]) {
            PyList_SET_ITEM(segs, a, Py_NewRef(Py_None));
            continue;
        }
        memcpy(t, base + from, (size_t)(sp[0] - from));
        t += sp[0] - from;
        *t++ = '[', *t++ = ']';
        from = sp[1];
        PyObject *f = PyBytes_FromStringAndSize(NULL, 33 * n);
        if (!f) goto done;
        int64_t *col = (int64_t *)PyBytes_AS_STRING(f), *row = fields->a + sp[4];
        uint8_t *crowd = (uint8_t *)(col + 3 * n), *scores = crowd + n; /* scores: float64, unaligned */
        for (int64_t k = 0; k < n; k++, row += PB_NFIELDS) {
            col[k] = row[0], col[n + k] = row[1], col[2 * n + k] = row[2], crowd[k] = (uint8_t)row[3];
            double score = NAN;
            if (row[PB_SCORE] >= 0 && score_text(base + row[PB_SCORE], base + len, &score)) {
                Py_DECREF(f);
                goto done;
            }
            memcpy(scores + 8 * k, &score, 8);
        }
        PyObject *item = Py_BuildValue("(LLLN)", (long long)sp[0], (long long)sp[1], (long long)n, f);
        if (!item) goto done;
        PyList_SET_ITEM(segs, a, item);
    }
    memcpy(t, base + from, (size_t)(len - from));
    res = PyTuple_Pack(2, text, segs);
done:
    Py_XDECREF(text);
    Py_XDECREF(segs);
    return res;
}

/* The document's top-level object walked for its "annotations" array (scan_annotations); 0, -1 (not a document
 * the scan reads: json.loads reads it) or -2 (out of memory).  Plain C: py_scan runs it without the GIL. */
static int scan_document(const unsigned char *base, Py_ssize_t len, int gt, pb_vec *spans, pb_vec *fields) {
    const unsigned char *s;
    pb_cur c = {base, base + len};
    int seen = 0, esc, r;
    pb_ws(&c);
    if (c.p >= c.end || *c.p++ != '{') return -1;
    pb_ws(&c);
    if (c.p < c.end && *c.p == '}') return -1;
    for (;;) {
        pb_ws(&c);
        if (c.p >= c.end || *c.p != '"') return -1;
        s = c.p + 1;
        if (pb_skip_string(&c, &esc) || esc) return -1;
        int is_ann = pb_key_is(s, c.p - 1, "annotations");
        pb_ws(&c);
        if (c.p >= c.end || *c.p++ != ':') return -1;
        pb_ws(&c);
        if (is_ann) {
            if (seen++ || c.p >= c.end || *c.p != '[') return -1;
            if ((r = scan_annotations(&c, base, gt, spans, fields)) < 0) return r;
        } else if (pb_skip_value(&c)) {
            return -1;
        }
        pb_ws(&c);
        if (c.p >= c.end) return -1;
        if (*c.p == '}') break;
        if (*c.p++ != ',') return -1;
    }
    c.p++;
    pb_ws(&c);
    return seen && c.p == c.end ? 0 : -1;
}

static PyObject *py_scan(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer b;
    int gt, r;
    if (!PyArg_ParseTuple(args, "y*p", &b, &gt)) return NULL;
    pb_vec spans = {0}, fields = {0};
    PyObject *res = NULL;
    Py_BEGIN_ALLOW_THREADS
    r = scan_document(b.buf, b.len, gt, &spans, &fields);
    Py_END_ALLOW_THREADS
    if (r == 0) {
        res = scan_result(b.buf, b.len, &spans, &fields);
    } else if (r == -2) {
        PyErr_NoMemory();
    } else {
        res = Py_NewRef(Py_None);
    }
    free(spans.a);
    free(fields.a);
    PyBuffer_Release(&b);
    return res;
}

/* typed(segments_info, gt) -> bool: every entry a dict whose id and category_id (and, with gt, area) are exact
 * ints (coco_format._segment_ok for each) */
static PyObject *py_typed(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *segs;
    int gt;
    if (!PyArg_ParseTuple(args, "O!p", &PyList_Type, &segs, &gt)) return NULL;
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(segs); k++) {
        PyObject *s = PyList_GET_ITEM(segs, k), *v;
        if (!PyDict_CheckExact(s)) Py_RETURN_FALSE;
        if (!(v = PyDict_GetItem(s, k_id)) || !PyLong_CheckExact(v)) Py_RETURN_FALSE;
        if (!(v = PyDict_GetItem(s, k_category_id)) || !PyLong_CheckExact(v)) Py_RETURN_FALSE;
        if (gt && (!(v = PyDict_GetItem(s, k_area)) || !PyLong_CheckExact(v))) Py_RETURN_FALSE;
    }
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"segments", py_segments, METH_VARARGS, "parse_segments' arrays of a segments_info that passes, packed."},
    {"typed", py_typed, METH_VARARGS, "Whether every segment has parse_annotations' field types."},
    {"scan", py_scan, METH_VARARGS, "A JSON document with its plain segments_info arrays read and cut out."},
    {"packed", py_packed, METH_VARARGS, "segments() for the fields of an array scan() read."},
    {"match", py_match, METH_VARARGS, "match_image of panbench.pq.matching, packed (see the module source)."},
    {"boundary_match", py_boundary_match, METH_VARARGS, "Boundary PQ's contributions: the match with min(mask IoU, boundary IoU)."},
    {"areas", py_areas, METH_VARARGS, "The area checks of evaluator._match and the predictions' areas."},
    {"fold", py_fold, METH_VARARGS, "semantic_pairs and unlisted_pixels of one table, packed."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_match", "panbench's per-image match in C.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__match(void) {
    if (!k_id) {
        k_category_id = PyUnicode_InternFromString("category_id");
        k_area = PyUnicode_InternFromString("area");
        k_iscrowd = PyUnicode_InternFromString("iscrowd");
        k_score = PyUnicode_InternFromString("score");
        k_id = PyUnicode_InternFromString("id");
        if (!k_id || !k_category_id || !k_area || !k_iscrowd || !k_score) return NULL;
    }
    return PyModule_Create(&module);
}
